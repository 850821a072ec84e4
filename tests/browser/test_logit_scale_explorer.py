"""Notebook 15's logit-scale explorer, driven in Chromium through Voila.

The widget cell and setup cell are the notebook's; the prep cell builds the same inputs with the
notebook's own calls on the real emoji pairs, with the towers left untrained (training takes a
minute; the widget only needs a similarity matrix). The same prep runs in this process, so each
readout and each picture can be compared with what the package computes for the slider's value.
"""
import re

from harness import course_cells, png_src, run_here, same_pixels

from cl_teach.widgets import logit_scale_stats, plot_logit_scale_stats

PREP = """\
emoji = load_emoji(size=32)
emoji_train, emoji_test = emoji.split(test_fraction=0.2, seed=0)
evocab = Vocab.build(emoji_train.texts("en"), tokenizer="word")
e_train_ids, e_test_ids = (evocab.encode(s.texts("en"), max_len=12) for s in (emoji_train, emoji_test))
torch.manual_seed(0)
clip_emoji = CLIP(SmallCNN(in_channels=3), TextCNN(len(evocab), dim=64, out_dim=128), embed_dim=64)
z_img_test, z_txt_test = encode_pairs(clip_emoji, emoji_test.images, e_test_ids)
"""
DEFAULT = ("from cl_teach.widgets import logit_scale_explorer\nimport torch\nidx = torch.arange(8)\n"
           "sims = z_img_test[idx] @ z_txt_test[idx].T\nlogit_scale_explorer(sims)")
READOUT = r"s = .*CLIP loss = "


def parse(text):
    m = re.search(r"s = ([\d.e+-]+) \(tau = [\d.e+-]+\) \| CLIP loss = ([\d.]+) "
                  r"\| mean P\(right caption\) = ([\d.]+)", text)
    assert m, text
    return tuple(map(float, m.groups()))


def readout(st):
    return (f"s = {st['logit_scale']:.3g} (tau = {1 / st['logit_scale']:.3g}) | CLIP loss = "
            f"{st['loss']:.3f} | mean P(right caption) = {st['diag_prob']:.3f}")


def test_logit_scale_explorer(open_widget):
    cells = course_cells("15", "logit_scale_explorer", DEFAULT, prep=[PREP])
    ns = run_here(cells)                                             # the same inputs, in this process
    widget_cell = cells[-1].replace("logit_scale_explorer(", "_args = (lambda *a, **k: (a, k))(", 1)
    exec(widget_cell, ns)
    (sims, *_), kw = ns["_args"]
    labels = dict(row_labels=kw.get("row_labels"), col_labels=kw.get("col_labels"))

    page = open_widget(cells, wait_for=READOUT)
    page.settle()
    first = page.text_matching(READOUT)
    s0, _, _ = parse(first)
    assert abs(s0 - kw.get("logit_scale", 14.3)) / s0 < 0.01

    page.type_into_slider("logit scale", 1)                         # s = 1: the softmax is nearly flat
    flat_text = page.wait_for_change(READOUT, first, page.images())
    flat = logit_scale_stats(sims, 1.0)
    assert flat_text == readout(flat)
    assert same_pixels(page.images()[0], png_src(plot_logit_scale_stats(flat, **labels)))
    n = sims.shape[0]
    assert flat["probs"].max() < 3 / n, "at s = 1 no caption can dominate (cosines lie in [-1, 1])"
    page.screenshot("15_logit_scale_explorer_flat")

    page.type_into_slider("logit scale", 100)                       # s = 100: nearly a hard arg-max
    sharp_text = page.wait_for_change(READOUT, flat_text, page.images())
    sharp = logit_scale_stats(sims, 100.0)
    assert sharp_text == readout(sharp)
    assert same_pixels(page.images()[0], png_src(plot_logit_scale_stats(sharp, **labels)))
    assert sharp["probs"].max(axis=1).mean() > flat["probs"].max(axis=1).mean()
    page.screenshot("15_logit_scale_explorer")
