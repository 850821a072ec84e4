"""Notebook 14's nearest-neighbour explorer, driven in Chromium through Voila.

The notebook's setup cell and widget cell are used verbatim. The prep cell makes the widget's
inputs from the real Weibo test posts with the notebook's own vocabulary cell: TF-IDF on the
posts' characters, and two *untrained* encoders (the notebook's TinyTransformer, two seeds) in
place of SimCSE and Self-Guided (training them takes a minute). The same cells run in this
process, so each readout (the listed posts, their ticks, the mean shares with their intervals,
the paired verdicts) and each picture is compared with the package's numbers for the sliders.
"""
import re

import pytest
from harness import course_cell, course_cells, png_src, run_here, same_pixels

from cl_teach.widgets import neighbour_lists, neighbour_stats, plot_neighbour_stats

PREP_DATA = """\
valid_posts, valid_tags = weibo_posts("valid")
test_posts, test_tags = weibo_posts("test")
"""
PREP = """\
relevant = shared_label_relevance(test_tags)
queries = [i for i, r in enumerate(relevant) if r]
untrained = {}
for s in (0, 1):
    torch.manual_seed(s)
    untrained[f"untrained {s}"] = embed(TinyTransformer(len(vocab), dim=64, out_dim=128, n_layers=2,
                                                        max_len=max_len, dropout=0.1), test_ids)
X_test = TfidfVectorizer(analyzer="char", ngram_range=(1, 2)).fit_transform(test_posts)
systems = {"TF-IDF": X_test, **untrained}
"""
DEFAULT = ("from cl_teach.widgets import neighbour_explorer\n"
           "neighbour_explorer(systems, test_posts, test_tags, queries, relevant, seed=SEED)")
READOUT = r"k = \d+ \| share of the \d+ nearest sharing a hashtag"


def check_readout(text, st, posts):
    """The page's readout shows the stats: query, k, ticks, listed posts, means, verdicts."""
    assert f"query {st['query']} of {st['n_queries']}: " in text, text[:200]
    assert posts[st["post"]][:20] in text
    k = st["k"]
    assert text.count("✓") == sum(s for n in st["names"] for _, s in st["neighbours"][n])
    assert text.count("✓") + text.count("✗") == k * len(st["names"])
    for n in st["names"]:
        assert f"{n}: {sum(s for _, s in st['neighbours'][n])} of {k}" in text
        for j, _ in st["neighbours"][n]:
            assert posts[j][:6] in text
        assert (f"{n} {st['share'][n][k - 1]:.3f} [{st['low'][n][k - 1]:.3f}, "
                f"{st['high'][n][k - 1]:.3f}]") in text
    for (a, b), d in st["diffs"].items():
        assert f"{a} minus {b} {d.points()} points: {d.verdict(a, b)}" in text
    assert re.search(rf"k = {k} \| share of the {k} nearest", text)


def test_neighbour_explorer(open_widget):
    from cl_teach.data import weibo_posts
    try:
        weibo_posts("test")
    except FileNotFoundError as e:
        pytest.skip(f"the Weibo corpus is not here: {str(e)[:80]}")
    vocab = course_cell("14", "vocab = Vocab.build(", through="test_ids = vocab.encode")
    cells = course_cells("14", "neighbour_explorer", DEFAULT, prep=[PREP_DATA, vocab, PREP])
    ns = run_here(cells)
    lists = neighbour_lists(ns["systems"], ns["queries"])
    posts = ns["test_posts"]

    def expect(query, k):
        return neighbour_stats(lists, ns["relevant"], ns["queries"], query, k, seed=ns["SEED"])

    page = open_widget(cells, wait_for=READOUT, timeout=120_000)
    page.settle()
    first = page.text_matching(READOUT)
    start = expect(0, 3)                                             # the builder's defaults
    check_readout(first, start, posts)
    assert same_pixels(page.images()[0], png_src(plot_neighbour_stats(start)))

    page.type_into_slider("k", 8)
    k8_text = page.wait_for_change(READOUT, first, page.images())
    k8 = expect(0, 8)
    check_readout(k8_text, k8, posts)
    assert same_pixels(page.images()[0], png_src(plot_neighbour_stats(k8)))
    assert k8["share"]["TF-IDF"][7] < start["share"]["TF-IDF"][2]     # the share falls with k here

    page.type_into_slider("query", 100)                              # the figure does not move with it
    q_text = page.wait_for_change(READOUT, k8_text, [])
    moved = expect(100, 8)
    check_readout(q_text, moved, posts)
    assert same_pixels(page.images()[0], png_src(plot_neighbour_stats(moved)))
    page.screenshot("14_neighbour_explorer")
