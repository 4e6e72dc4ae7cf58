from osdeploy.errors import ConfigError, Problem, suggest


def test_problem_format_without_line() -> None:
    problem = Problem(
        "hosts[1].address",
        "duplicate address 10.0.0.5 (also hosts[0])",
        "give each host its own address",
    )
    assert str(problem) == (
        "osdeploy.yml: hosts[1].address: duplicate address 10.0.0.5 (also hosts[0]); "
        "give each host its own address"
    )


def test_problem_format_with_line_and_no_path() -> None:
    problem = Problem("", "YAML syntax error: x", "fix it", "conf/osdeploy.yml", 7)
    assert str(problem) == "conf/osdeploy.yml:7: YAML syntax error: x; fix it"


def test_config_error_counts_problems() -> None:
    error = ConfigError([Problem("a", "b", "c"), Problem("d", "e", "f")], "osdeploy.yml")
    assert str(error) == "osdeploy.yml: 2 problems"
    assert error.exit_code == 2
    assert len(error.problems) == 2


def test_suggest_close_match_or_list() -> None:
    assert suggest("keystne", ["keystone", "glance"], "known") == "did you mean keystone?"
    assert suggest("zzz", ["keystone", "glance"], "known") == "known: keystone, glance"
