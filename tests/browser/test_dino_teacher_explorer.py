"""Notebook 12's DINO teacher explorer, driven in Chromium through Voila.

The notebook's setup cell, data cell and widget cell are used verbatim. The prep cell makes the
widget's inputs with the notebook's calls but an *untrained* teacher (training takes a minute);
its center is set to the batch mean of its outputs, what the EMA center converges to on a fixed
batch. The same cells run in this process, so each readout and picture is compared with the
package's.
"""
from harness import course_cell, course_cells, png_src, run_here, same_pixels

from cl_teach.widgets import dino_teacher_stats, plot_dino_teacher_stats

PREP = """\
from cl_teach.widgets import dino_teacher_explorer
cl_teach.setup(seed=0, verbose=False)
teacher = DINO(SmallCNN(), n_outputs=256)
with torch.no_grad():
    teacher.eval()
    t_out = teacher.teacher_head(teacher.teacher_encoder(test.x[:512]))
    teacher.center.copy_(t_out.mean(0))
"""
DEFAULT = "dino_teacher_explorer(t_out, teacher.center)"
READOUT = r"tau_t = .*entropy per image = "


def readout(st):
    return (f"tau_t = {st['teacher_temperature']:.3g} | centering {'on' if st['centering'] else 'off'}"
            f" | entropy per image = {st['entropy']:.3f} | of the batch mean = "
            f"{st['batch_entropy']:.3f} | log K = {st['log_k']:.3f}")


def test_dino_teacher_explorer(open_widget):
    cells = course_cells("12", "dino_teacher_explorer", DEFAULT,
                         prep=[course_cell("12", "train, test = "), PREP])   # the data cell, then ours
    ns = run_here(cells)                                             # the same inputs, in this process
    t_out, center = ns["t_out"], ns["teacher"].center

    page = open_widget(cells, wait_for=READOUT)
    page.settle()
    first = page.text_matching(READOUT)
    on = dino_teacher_stats(t_out, center, 0.04, True)               # the notebook's defaults
    assert first == readout(on)
    assert same_pixels(page.images()[0], png_src(plot_dino_teacher_stats(on)))

    page.page.locator(".widget-checkbox input[type=checkbox]").click()   # centering off
    off_text = page.wait_for_change(READOUT, first, page.images())
    off = dino_teacher_stats(t_out, center, 0.04, False)
    assert off_text == readout(off)
    assert same_pixels(page.images()[0], png_src(plot_dino_teacher_stats(off)))
    # without the center, the same outputs win for every image: the batch-mean entropy drops
    assert off["batch_entropy"] < 0.5 * on["batch_entropy"], (off["batch_entropy"], on["batch_entropy"])
    page.screenshot("12_dino_teacher_explorer_no_centering")

    page.type_into_slider("teacher tau", 1)                          # no sharpening: uniform outputs
    flat_text = page.wait_for_change(READOUT, off_text, page.images())
    flat = dino_teacher_stats(t_out, center, 1.0, False)
    assert flat_text == readout(flat)
    assert same_pixels(page.images()[0], png_src(plot_dino_teacher_stats(flat)))
    assert flat["entropy"] > 0.99 * flat["log_k"]
    page.screenshot("12_dino_teacher_explorer")
