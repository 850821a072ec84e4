"""Notebook 05's augmentation explorer, driven in Chromium through Voila.

The notebook's setup cell and widget cell are used verbatim; the one input the widget needs
(``photos``) is loaded with the same call as in the notebook. After each move of a slider, the
image in the browser must be exactly the figure the package draws for the new slider values.
"""
from harness import course_cells, png_src, same_pixels

from cl_teach.data import load_photos
from cl_teach.plotting import show_images
from cl_teach.widgets import augmentation_views

PREP = "photos, photo_names = load_photos(size=96)"


def expected(strength, crop_min, seed, n_views=6):
    photos, _ = load_photos(size=96)
    grid = augmentation_views(photos[[0, 1, 2]], strength, crop_min, n_views, seed)
    title = f"first column: original; strength {strength:g}, crop area {crop_min:g}-1"
    return png_src(show_images(grid, nrow=1 + n_views, scale=0.8, title=title))


def test_augmentation_explorer(open_widget):
    cells = course_cells("05", "augmentation_explorer",
                         "augmentation_explorer(photos[[0, 1, 2]], strength=1.0, crop_min=0.25)",
                         prep=[PREP])
    page = open_widget(cells)
    page.settle()
    start = page.images()
    assert len(start) == 1 and same_pixels(start[0], expected(1.0, 0.25, 0)), \
        "the first drawing is not the package's figure"

    page.press_on_slider("strength", "ArrowLeft", times=4)          # 1.0 -> 0.0: crop and flip only
    page.page.wait_for_function("(s) => { const i = document.querySelector('.jp-OutputArea-output img');"
                                " return i && i.src !== s; }", arg=start[0], timeout=60_000)
    page.settle()
    no_jitter = page.images()
    assert same_pixels(no_jitter[0], expected(0.0, 0.25, 0))
    page.screenshot("05_augmentation_explorer_strength0")

    # Typed, not stepped: 0.25 + 15 * 0.05 is not exactly 1.0 in binary floating point.
    page.type_into_slider("smallest crop", 1)                      # crop area 1: aspect and flip only
    page.page.wait_for_function("(s) => { const i = document.querySelector('.jp-OutputArea-output img');"
                                " return i && i.src !== s; }", arg=no_jitter[0], timeout=60_000)
    page.settle()
    assert same_pixels(page.images()[0], expected(0.0, 1.0, 0))
    page.screenshot("05_augmentation_explorer")
