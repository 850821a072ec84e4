"""Label noise with a comparator (issue 12 item 4): the contrastive tower, a softmax classifier and kNN votes.

The open world of ``bench_hashtags.py`` (candidates: ``train_tag.txt`` + ``valid``, never the test
labels; recall over ALL test posts). A share of the training posts get another post's hashtags
(:func:`cl_teach.apps.hashtags.corrupt_tags`, shares 0 / 0.2 / 0.4 / 0.6 / 0.8 / 1.0, the draw
seeded by the run's seed); at each (share, seed) three systems read the same noisy labels:

* the tower: :func:`cl_teach.apps.hashtag_tower.fit_open_world_tower` with the options
  ``bench_hashtags.py`` chose on its development split (``results/hashtags.json``);
* the classifier: :func:`cl_teach.apps.hashtag_classifier.fit_hashtag_classifier`, the same
  features, width and n-gram dropout, a free class vector per hashtag (it cannot read a
  hashtag's text); its learning rate and epochs chosen here on the same development split,
  clean labels, so it is not handicapped by the tower's recipe;
* kNN votes: the hashtags of the 30 most similar training posts (TF-IDF of post + replies).

TF-IDF(post + replies) against the hashtag's text reads no label: the "no training" line.
Intervals: over seeds (t, the label draw and the training) and over the test posts (bootstrap of
the seed-averaged per-post values); a difference is claimed when both exclude 0.

Run: ``CL_TEACH_THREADS=1 .venv/bin/python benchmarks/bench_hashtag_noise.py`` (~25 min on one
thread) -> ``benchmarks/results/hashtag_noise.json`` and ``.png``. Needs the real corpus.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, loadavg, machine, set_threads  # noqa: E402
from benchmarks.bench_hashtags import log, non_learned, open_world_protocol  # noqa: E402
from cl_teach.apps import hashtag_noise as N  # noqa: E402
from cl_teach.apps import hashtags as H  # noqa: E402
from cl_teach.apps import open_world as OW  # noqa: E402
from cl_teach.apps.hashtag_classifier import fit_hashtag_classifier  # noqa: E402
from cl_teach.apps.hashtag_tower import TowerConfig, post_texts  # noqa: E402

SHARES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
CLASSIFIER_GRID = [dict(lr=1e-2, epochs=10), dict(lr=3e-2, epochs=10), dict(lr=1e-2, epochs=20),
                   dict(lr=3e-2, epochs=20)]


def tower_config() -> TowerConfig:
    """The tower options bench_hashtags.py chose on its development split."""
    record = RESULTS / "hashtags.json"
    if not record.exists():
        raise FileNotFoundError(f"looked for {record}: run benchmarks/bench_hashtags.py first")
    return TowerConfig(**json.loads(record.read_text())["dev"]["tower_config"])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--shares", type=float, nargs="+", default=list(SHARES))
    ap.add_argument("--out", default=str(RESULTS / "hashtag_noise.json"))
    args = ap.parse_args(argv)
    set_threads(1)
    t0 = time.time()
    w = open_world_protocol()
    upstream, candidates, train, test, answers = w.upstream, w.candidates, w.train, w.test, w.answers
    dev_train, dev, dev_candidates, dev_answers = w.dev_train, w.dev, w.dev_candidates, w.dev_answers
    tower_cfg = tower_config()

    # ---- the classifier's options on the development split (clean labels) --------------------
    tried = []
    for change in CLASSIFIER_GRID:
        cfg = replace(tower_cfg, **change)
        clf = fit_hashtag_classifier(dev_train.posts, dev_train.convs, dev_train.tags, dev_candidates, cfg)
        r10 = float(OW.per_post_metrics(clf.scores(dev.posts, dev.convs), dev_answers)["recall@10"].mean())
        tried.append({"change": change, "dev_recall@10": round(r10, 4)})
        log(f"dev classifier {change}: recall@10 {r10:.4f}", t0)
    best = max(tried, key=lambda t: t["dev_recall@10"])
    classifier_cfg = replace(tower_cfg, **best["change"])

    # ---- the sweep on the test split -----------------------------------------------------------
    s_test = non_learned(train, test, candidates, upstream + train.tags, None)
    vec = H.tfidf_vectorizer(post_texts(train.posts, train.convs) + H.tag_vocabulary(train.tags))
    vote_sims = H.tfidf_scores(vec, vec.transform(post_texts(test.posts, test.convs)),
                               vec.transform(post_texts(train.posts, train.convs)))
    tfidf = OW.per_post_metrics(s_test["tfidf_conv"], answers)
    sweep = N.noise_sweep(train.posts, train.convs, train.tags, test.posts, test.convs, answers,
                          candidates, args.shares, args.seeds, config=tower_cfg,
                          classifier_config=classifier_cfg, vote_sims=vote_sims, progress=True)
    if 0.0 in sweep["votes"]:                                        # share 0 is the clean labels
        clean = OW.per_post_metrics(s_test["votes_conv"], answers)["recall@10"]
        assert np.allclose(np.mean(sweep["votes"][0.0]["recall@10"], axis=0), clean)

    out = {"what": __doc__.split("\n")[0], "candidates": len(candidates), "test_posts": len(test.posts),
           "coverage": round(OW.coverage(answers), 4), "shares": sweep["shares"], "seeds": sweep["seeds"],
           "tower_config": asdict(tower_cfg), "classifier_config": asdict(classifier_cfg),
           "classifier_dev_search": tried,
           "fit_seconds_median": {k: round(float(np.median(v)), 1) for k, v in sweep["seconds"].items()}}
    for metric in ("recall@10", "recall@1", "mrr"):
        out[metric] = N.summarize_sweep(sweep, metric)
    out["tfidf_no_labels"] = {m: {"value": v["value"], "ci95": v["ci95"]}
                              for m, v in OW.metrics_with_intervals(tfidf).items()}
    diffs = {}
    for share in sweep["shares"]:
        k = share
        diffs[k] = {"tower-classifier": N.sweep_difference(sweep, "tower", "classifier", share),
                    "tower-votes": N.sweep_difference(sweep, "tower", "votes", share),
                    "classifier-votes": N.sweep_difference(sweep, "classifier", "votes", share)}
        for name in N.SYSTEMS:
            diffs[k][f"{name}-tfidf"] = N.sweep_difference(sweep, name, tfidf["recall@10"], share)
    out["differences_recall@10"] = diffs
    out["wall_seconds"] = round(time.time() - t0, 1)
    out["loadavg_at_end"] = loadavg()
    out["machine"] = machine()
    Path(args.out).write_text(json.dumps(out, indent=1, ensure_ascii=False, default=str) + "\n")
    plot(out, Path(args.out).with_suffix(".png"))
    for share, d in diffs.items():
        print(share, {k: (v["estimate"], v["seeds_ci95"], v["claim"]) for k, v in d.items()})
    return out


def plot(out: dict, path: Path) -> None:
    from cl_teach import plotting
    r = out["recall@10"]
    shares = out["shares"]
    curves = {name: (shares, [r[name][s]["mean"] for s in shares]) for name in N.SYSTEMS}
    errors = None
    if len(out["seeds"]) > 1:
        errors = {name: ([r[name][s]["seeds_ci95"][0] for s in shares],
                         [r[name][s]["seeds_ci95"][1] for s in shares]) for name in N.SYSTEMS}
    fig = plotting.plot_curves(curves, "share of training posts with another post's hashtags",
                               "test recall@10 (open world)",
                               title=f"label noise, {len(out['seeds'])} seeds (95% over seeds)",
                               reference={"TF-IDF (reads no label)":
                                          out["tfidf_no_labels"]["recall@10"]["value"]},
                               errors=errors)
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
