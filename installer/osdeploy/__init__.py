"""osdeploy: install an OpenStack cloud on Debian 13 hosts from one config file."""

from pathlib import Path

__version__ = "0.1.0"

#: The source tree holding roles/, playbooks/ and inventory/ (the package is installed
#: editable from installer/osdeploy/).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
