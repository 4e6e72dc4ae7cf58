"""Checks of the mariadb role on a converged host."""


def sql(host, statement):
    """Run SQL as root over the unix socket; return the output."""
    return host.check_output(f'mysql -NBe "{statement}"')


def test_root_over_socket_works(host):
    assert sql(host, "SELECT CURRENT_USER()") == "root@localhost"


def test_root_over_tcp_refused(host, address):
    for password in ("", "-proot"):
        result = host.run(f"mysql -h {address} -u root {password} -NBe 'SELECT 1'")
        assert result.rc != 0
    accounts = sql(
        host, "SELECT CONCAT(User, '@', Host) FROM mysql.user WHERE User IN ('root', '')"
    )
    assert accounts.split() == ["root@localhost"]
    assert "unix_socket" in sql(host, "SHOW CREATE USER root@localhost")
    assert "test" not in sql(host, "SHOW DATABASES").split()


def test_listens_on_the_address_only(host, address):
    listeners = host.check_output("ss -Hltn 'sport = :3306'")
    assert f"{address}:3306" in listeners
    assert "0.0.0.0:3306" not in listeners
    assert "*:3306" not in listeners
    assert host.run("mysql -h 127.0.0.1 -u nobody -NBe 'SELECT 1'").rc != 0


def test_settings_applied(host):
    values = sql(
        host,
        "SELECT @@max_connections, @@character_set_server, @@collation_server,"
        " @@innodb_file_per_table, @@skip_name_resolve, @@innodb_buffer_pool_size,"
        " @@max_allowed_packet",
    ).split()
    assert values == [
        "4096",
        "utf8mb4",
        "utf8mb4_general_ci",
        "1",
        "1",
        str(256 * 1024 * 1024),
        str(64 * 1024 * 1024),
    ]
    config = host.file("/etc/mysql/mariadb.conf.d/99-osdeploy.cnf")
    assert (config.user, config.group, config.mode) == ("root", "mysql", 0o640)


def test_database_user_over_tcp(host, address):
    sql(
        host,
        "CREATE DATABASE IF NOT EXISTS molecule;"
        " CREATE USER IF NOT EXISTS 'molecule'@'%' IDENTIFIED BY 'secret';"
        " GRANT ALL ON molecule.* TO 'molecule'@'%'",
    )
    client = f"mysql -h {address} -u molecule -psecret molecule -NBe"
    host.check_output(f"{client} 'CREATE TABLE IF NOT EXISTS t (v INT); INSERT INTO t VALUES (42)'")
    assert host.check_output(f"{client} 'SELECT MAX(v) FROM t'") == "42"
    # The server saw the client's address, not a name (skip-name-resolve).
    who = host.check_output(f"{client} 'SELECT USER()'")
    assert who == f"molecule@{address}"
