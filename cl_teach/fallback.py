"""On fallback data the course's claims are reported, not asserted (issue 17, item 4).

The notebooks assert their claims on the course's data (``assert d.low > 0, "SimCLR's h should
beat raw pixels ..."`` on Fashion-MNIST). When a loader has to fall back (scikit-learn's digits
for Fashion-MNIST, DejaVu Sans's glyphs for the emoji, the generated Weibo stand-in), those claims
are about data the learner does not have, and the first one that fails would stop "Run all".
:func:`report_claims` makes the kernel rewrite, from the next cell on, every ``assert test, msg``
of a cell (outside its functions) into a check that prints ``!! NOT REPRODUCED ON THE FALLBACK
DATA (...): msg`` and goes on. What checks the learner's code stays hard: an assert that calls a
function the learner writes (one whose body holds ``# BEGIN SOLUTION`` or raises
``NotImplementedError``) or reads a name the cell computed from such a call (``mine =
my_knn(...)``, then ``agree = (mine == ref).mean()``: both), and every assert inside a function.
Outside IPython, and in a kernel where no loader fell back, nothing changes.
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

    Only outside functions, and only where ``t`` (or ``m``) neither calls one of ``learners`` (a
    set of names, or a callable returning one) nor reads a name the cell computed from such a call.
    """

    def __init__(self, learners=frozenset()):
        self.learners = learners

    def visit_Module(self, node):
        """The cell: which names hold the learner's results (``self.tainted``), then the rewrite."""
        self.names = set(self.learners() if callable(self.learners) else self.learners)
        self.tainted = set()
        flows = sorted((n for n in ast.walk(node) if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign,
                                                                     ast.For, ast.comprehension))),
                       key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))
        for _ in range(2):                                     # a loop's later lines feed its earlier
            for n in flows:
                value = n.iter if isinstance(n, (ast.For, ast.comprehension)) else n.value
                if value is not None and self._learned(value):
                    targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                    self.tainted |= {t.id for tg in targets for t in ast.walk(tg) if isinstance(t, ast.Name)}
        return self.generic_visit(node)

    def _learned(self, expr) -> bool:
        """Does ``expr`` call a learner's function or read a name computed from one?"""
        def hit(n):
            if isinstance(n, ast.Call):
                return getattr(n.func, "id", getattr(n.func, "attr", None)) in self.names
            return isinstance(n, ast.Name) and n.id in self.tainted
        return any(hit(n) for n in ast.walk(expr))

    def visit_FunctionDef(self, node):
        """A function, class or lambda: its asserts check code, not a claim; left alone."""
        return node                                            # code checks inside functions

    visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = visit_FunctionDef

    def visit_Assert(self, node):
        """The rewrite, unless the assert checks the learner's code."""
        if self._learned(node.test) or (node.msg is not None and self._learned(node.msg)):
            return node
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
