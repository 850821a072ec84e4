"""On fallback data the course's claims are reported, not asserted (issue 17, item 4).

The notebooks assert their claims on the course's data (``assert d.low > 0, "SimCLR's h should
beat raw pixels ..."`` on Fashion-MNIST). When a loader has to fall back (scikit-learn's digits
for Fashion-MNIST, DejaVu Sans's glyphs for the emoji, the generated Weibo stand-in), those claims
are about data the learner does not have, and the first one that fails would stop "Run all".
:func:`report_claims` makes the kernel rewrite, from the next cell on, every ``assert test, msg``
of a cell (outside its functions) into a check that prints ``!! NOT REPRODUCED ON THE FALLBACK
DATA (...): msg`` and goes on. The asserts of a cell that calls a function the learner writes (an
exercise's check: a function whose body holds ``# BEGIN SOLUTION`` or raises
``NotImplementedError``) and every assert inside a function stay hard. Outside IPython, and in a
kernel where no loader fell back, nothing changes.
"""
from __future__ import annotations

import ast
import sys

NAME = "_cl_teach_not_reproduced"


def learner_functions(sources) -> set[str]:
    """Names of the functions a learner writes among ``sources`` (cells' raw text)."""
    names = set()
    for src in sources:
        if "BEGIN SOLUTION" not in src and "NotImplementedError" not in src:
            continue
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for f in ast.walk(tree):
            if isinstance(f, ast.FunctionDef):
                body = ast.get_source_segment(src, f) or ""
                if "BEGIN SOLUTION" in body or "raise NotImplementedError" in body:
                    names.add(f.name)
    return names


class SoftClaims(ast.NodeTransformer):
    """``assert t, m`` -> ``if not t: _cl_teach_not_reproduced(m, "t")``.

    Only outside functions, and only in cells that call none of ``learners`` (a set of names, or
    a callable returning one).
    """

    def __init__(self, learners=frozenset):
        self.learners = learners

    def visit_Module(self, node):
        """The cell: left alone when it calls a learner's function."""
        called = {getattr(c.func, "id", getattr(c.func, "attr", None))
                  for c in ast.walk(node) if isinstance(c, ast.Call)}
        if called & set(self.learners() if callable(self.learners) else self.learners):
            return node                                        # an exercise's check: stays hard
        return self.generic_visit(node)

    def visit_FunctionDef(self, node):
        """A function, class or lambda: its asserts check code, not a claim; left alone."""
        return node                                            # code checks inside functions

    visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = visit_FunctionDef

    def visit_Assert(self, node):
        """The rewrite."""
        call = ast.Call(ast.Name(NAME, ast.Load()),
                        [node.msg or ast.Constant(None), ast.Constant(ast.unparse(node.test))], [])
        new = ast.If(ast.UnaryOp(ast.Not(), node.test), [ast.Expr(call)], [])
        return ast.fix_missing_locations(ast.copy_location(new, node))


def report_claims(reason: str) -> bool:
    """From the next cell on, print a failed claim of the running IPython kernel instead of raising.

    Args:
        reason: what was missing and what stands in, for the notice (e.g. "scikit-learn's digits
            instead of Fashion-MNIST").

    Returns:
        True when installed (or already), False outside IPython.
    """
    ip = sys.modules["IPython"].get_ipython() if "IPython" in sys.modules else None
    if ip is None:
        return False
    reasons = ip.user_ns.setdefault("_cl_teach_fallbacks", [])
    if reason not in reasons:
        reasons.append(reason)

    def not_reproduced(message, test):
        print(f"!! NOT REPRODUCED ON THE FALLBACK DATA ({'; '.join(reasons)}): "
              f"{message or 'assert ' + test}", flush=True)

    ip.user_ns[NAME] = not_reproduced
    if not any(isinstance(t, SoftClaims) for t in ip.ast_transformers):
        ip.ast_transformers.append(SoftClaims(lambda: learner_functions(ip.user_ns.get("In", []))))
    return True
