"""Notebook 17's hashtag box, driven in Chromium through Voila: type a post, read its hashtags.

The setup and widget cells are the notebook's. The recommender the widget calls is built by the
prep cell from the notebook's own pieces on the real Weibo corpus (TF-IDF + votes of similar
training posts over the reply threads), without the trained dual tower (training takes a minute).
The same prep runs in this process, so each list shown can be compared with the package's answer.
"""
import re

import pytest
from harness import course_cells, run_here

PREP = """\
from cl_teach.data import load_weibo
train_split, test_split = load_weibo("valid"), load_weibo("test")
candidates = H.tag_vocabulary(test_split.tags)
train_vocab = H.tag_vocabulary(train_split.tags)
train_tags = H.tag_matrix(train_split.tags, candidates)
with_conv = lambda split: [p + " " + c for p, c in zip(split.posts, split.convs)]
vec_conv = H.tfidf_vectorizer(with_conv(train_split) + train_vocab)
X_train_conv = vec_conv.transform(with_conv(train_split))

def recommend(text, k=3):
    s = {"tfidf_conv": H.tfidf_scores(vec_conv, [text], candidates),
         "votes_conv": H.hashtag_votes(H.tfidf_scores(vec_conv, [text], X_train_conv), train_tags)}
    fused = H.fuse(s, {"tfidf_conv": 1.0, "votes_conv": 1.0})[0]
    return [(candidates[j], float(fused[j])) for j in H.top_k(fused[None], k)[0]]
"""
DEFAULT = "from cl_teach.widgets import hashtag_box\n\nhashtag_box(recommend)"
READOUT = r"#.+#.*score"


def shown(text):
    return [(t, float(s)) for t, s in re.findall(r"#([^#]+)#\s*score (-?[\d.]+)", text)]


def expected(recommend, text):
    return [(t, round(s, 2)) for t, s in recommend(text, 3)]


def test_hashtag_box(open_widget):
    from cl_teach.data import load_weibo
    try:
        load_weibo("valid")
    except FileNotFoundError as e:
        pytest.skip(f"the Weibo corpus is not here: {str(e)[:80]}")
    cells = course_cells("17", "hashtag_box", DEFAULT, prep=[PREP])
    ns = run_here(cells)                                             # the same inputs, in this process
    recommend = ns["recommend"]

    page = open_widget(cells, wait_for=READOUT, image=False)
    page.settle()
    box = page.page.locator(".widget-text input").first
    first_text, first_post = page.text_matching(READOUT), box.input_value()
    assert shown(first_text) == expected(recommend, first_post), first_text

    post = ns["test_split"].posts[0]                                 # a real post the model never saw
    box.fill(post)
    box.press("Enter")
    new_text = page.wait_for_change(READOUT, first_text, [])
    assert shown(new_text) == expected(recommend, post), new_text
    assert [t for t, _ in shown(new_text)] != [t for t, _ in shown(first_text)]
    assert len(shown(new_text)) == 3
    page.screenshot("17_hashtag_box")
