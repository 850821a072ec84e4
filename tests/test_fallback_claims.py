"""cl_teach.fallback: on fallback data a failed claim is printed, not raised; all else stays hard.

In a real IPython shell: what the kernel runs is rewritten only after a loader fell back; an
exercise's check (a cell calling a function with ``# BEGIN SOLUTION`` or ``NotImplementedError``)
and an assert inside a function still raise.
"""
import pytest

from cl_teach.fallback import SoftClaims, learner_functions, report_claims

IPython = pytest.importorskip("IPython")


@pytest.fixture
def shell():
    """A fresh IPython shell, made the current one (``get_ipython()``) for the test only."""
    from IPython.core.interactiveshell import InteractiveShell
    if InteractiveShell.initialized():
        pytest.skip("another IPython shell is current in this process")
    ip = InteractiveShell.instance()
    yield ip
    InteractiveShell.clear_instance()


def run(ip, src):
    r = ip.run_cell(src, store_history=True)
    return r.error_in_exec


def test_claims_raise_until_a_loader_falls_back(shell, capsys):
    assert isinstance(run(shell, "assert 1 > 2, 'one beats two'"), AssertionError)
    assert report_claims("digits instead of Fashion-MNIST")
    assert run(shell, "assert 1 > 2, 'one beats two'\nx_after = 5") is None
    assert shell.user_ns["x_after"] == 5                              # the cell went on
    out = capsys.readouterr().out
    assert "NOT REPRODUCED ON THE FALLBACK DATA (digits instead of Fashion-MNIST): one beats two" in out
    assert run(shell, "assert 2 > 1, 'two beats one'") is None
    assert "two beats one" not in capsys.readouterr().out             # a claim that holds: silent


def test_exercise_checks_and_asserts_in_functions_stay_hard(shell, capsys):
    report_claims("digits instead of Fashion-MNIST")
    run(shell, "def my_knn(x):\n    # BEGIN SOLUTION\n    return x\n    # END SOLUTION\n")
    assert isinstance(run(shell, "assert my_knn(1) == 2, 'the check'"), AssertionError)
    # a name computed from the learner's result, through another: still the learner's code
    assert isinstance(run(shell, "mine = my_knn(1)\nagree = [m * 2 for m in [mine]][0]\n"
                                 "assert agree == 5, 'derived'"), AssertionError)
    # a claim beside the check, on the notebook's own numbers: reported, and the cell goes on
    assert run(shell, "mine = my_knn(1)\nassert 1 > 2, 'a claim beside the check'\n"
                      "assert mine == 1, 'the check holds'\ndone = True") is None
    assert shell.user_ns["done"] and "a claim beside the check" in capsys.readouterr().out
    run(shell, "def stub(x):\n    raise NotImplementedError('write me')\n")
    assert isinstance(run(shell, "assert stub(1) == 1"), NotImplementedError)
    assert isinstance(run(shell, "def f():\n    assert False, 'inside'\nf()"), AssertionError)


def test_learner_functions_and_the_rewrite():
    srcs = ["def a(x):\n    # BEGIN SOLUTION\n    return x\n", "def b():\n    raise NotImplementedError\n",
            "def c():\n    return 1\n", "not python ("]
    assert learner_functions(srcs) == {"a", "b"}
    import ast
    tree = SoftClaims(set()).visit(ast.parse("for i in range(2):\n    assert i < 1, 'm'\n"))
    assert "_cl_teach_not_reproduced('m', 'i < 1')" in ast.unparse(tree)
    assert report_claims.__module__ == "cl_teach.fallback"
