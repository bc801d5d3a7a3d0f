from pathlib import Path

import nbformat as nbf


def nb(cells):
    n = nbf.v4.new_notebook()
    n.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    n.metadata["language_info"] = {"name": "python"}
    out = []
    for kind, src, *tags in cells:
        c = nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src)
        if tags:
            c.metadata["tags"] = tags[0]
        out.append(c)
    n.cells = out
    return n


COMMON = """study = ""            # a study folder; empty: the built-in synthetic cohort in OUT/study
out = "reports/latest"  # where everything this notebook writes goes
seed = 0
preset = "quick"       # synthetic cohort size when no study is given: quick | paper
patients = None        # fewer synthetic patients (teaching, tests)"""

explore = nb(
    [
        (
            "md",
            "# 1. Explore the cohort\n\nThis notebook looks at the clips before any model does: who the patients are, how the "
            "clips are split, how large the masses are and for how many frames each one stays in view. "
            "Run it top to bottom; change the **parameters** cell to look at your own study.",
        ),
        ("code", COMMON, ["parameters"]),
        (
            "code",
            "import usbkit.report.nbsetup; usbkit.report.nbsetup.setup()\nimport usbkit.report.explore as ex\nfrom usbkit.report.steps import ensure_study\nfrom usbkit.io.study import load_study\n\n"
            "study_path = ensure_study(study, out, preset=preset, seed=seed, patients=patients)\nS = load_study(study_path)\nex.cohort_summary(S)",
        ),
        (
            "md",
            "## Patients, clips and splits\n\nEvery **split is by patient**: all clips of one woman are in the same split. If "
            "a patient's clips were spread over training and test sets, the test would partly measure memory of that "
            "patient's anatomy and look better than it is. A *lesion-free clip* is a scan with no mass in it; it still "
            "counts when false positives per scan are computed.",
        ),
        ("code", "ex.lesion_figure(S)"),
        (
            "md",
            "## How long is a mass in view?\n\nIn a freehand sweep the probe moves across the breast, so a mass *enters* the "
            "imaging plane, grows to its largest section and *leaves*. A single frame shows one moment; the sequence "
            "shows the whole passage. Each line is one lesion: its box area frame by frame.",
        ),
        ("code", "ex.visibility_figure(S)"),
        (
            "md",
            "## Example frames\n\nThe green dashed boxes are the ground truth. In the synthetic cohort every frame is "
            "made by the convolution model of B-mode imaging (scatterers, point-spread function, envelope, log "
            "compression), so the grain you see is real speckle. Notice how the contrast of the mass changes from frame "
            "to frame, as it does with probe pressure and angle.",
        ),
        ("code", "ex.example_frames_figure(S)"),
        (
            "md",
            "## Intensity statistics\n\nMasses are mostly *hypoechoic*: darker than the tissue around them. The overlap of "
            "the two histograms is why a detector cannot simply threshold gray levels: fat lobules are dark too.",
        ),
        ("code", "ex.intensity_figure(S)"),
    ]
)

train = nb(
    [
        (
            "md",
            "# 2. Train the two detectors\n\nThe study compares a **single-frame** detector, which judges each frame on its "
            "own, with a **sequence** detector that shares the same network and adds what it saw in the previous frames. "
            "With `train = False` the notebook uses the small checkpoints shipped with usbkit (trained on the synthetic "
            "quick cohort); with `train = True` it trains both from scratch on the study's `train` split and keeps the "
            "epoch with the best validation sensitivity.",
        ),
        (
            "code",
            COMMON
            + """
train = False          # True: train both models here; False: use the shipped checkpoints
epochs = 15
device = "auto"        # auto picks a GPU when there is one
split = "test"         # the clips the models are run on afterwards""",
            ["parameters"],
        ),
        (
            "code",
            "import usbkit.report.nbsetup; usbkit.report.nbsetup.setup()\nfrom usbkit.report.steps import LiveLoss, ensure_study, train_or_load, training_logs, loss_figure, detect_all\n\n"
            "study_path = ensure_study(study, out, preset=preset, seed=seed, patients=patients)",
        ),
        (
            "md",
            "## Training\n\nEach epoch shows the loss (how wrong the heatmap, box size and offset predictions are on "
            "training windows) and the **validation sensitivity at 0.5 false positives per scan**, the study's own "
            "measure, computed on patients the model never trains on. The curves below update after every epoch.",
        ),
        (
            "code",
            "live = LiveLoss()\nif train:\n    display(live.widget)\n"
            "refs = train_or_load(study_path, out, train=train, epochs=epochs, device=device, seed=seed,\n"
            "                     on_epoch=live.update if train else None)\nrefs",
        ),
        ("code", "loss_figure(training_logs(refs))"),
        (
            "md",
            "## Run both models over the test clips\n\nDetections are written down to score 0.001 (a shorter list would cut "
            "the FROC curve short) in original-frame pixels, one CSV per model.",
        ),
        (
            "code",
            "detections = detect_all(study_path, refs, out, split=split, device=device)\ndetections",
        ),
    ]
)

scrub = nb(
    [
        (
            "md",
            "# 3. Scrub through clips\n\nThe scrubber shows one clip frame by frame: the ground truth (green, dashed) beside "
            "each model's marks above its own score threshold. Use the slider, the **play** button or the keyboard "
            "(click the image first; ← → one frame, Page Up / Page Down ten frames). The timeline below plots each "
            "model's highest score on every frame; the green band marks frames where a lesion is in view. Click it to "
            "jump. The picker lists clips by outcome, for example those where the sequence model found a mass the "
            "single-frame model missed.",
        ),
        (
            "code",
            COMMON
            + """
split = "test"
clips = []             # clip ids to write static pages for; empty: the first clip of the picker
fp_rate = 0.5          # thresholds start at each model's operating point at this FP/scan""",
            ["parameters"],
        ),
        (
            "code",
            "import usbkit.report.nbsetup; usbkit.report.nbsetup.setup()\nfrom pathlib import Path\nfrom usbkit.report.steps import ensure_study, read_detections\nfrom usbkit.viewer.scrubber import Scrubber\n"
            "from usbkit.viewer.pages import operating_thresholds, write_pages\nfrom usbkit.io.study import load_study\n\n"
            "S = load_study(ensure_study(study, out, preset=preset, seed=seed, patients=patients))\n"
            "dets = read_detections({'single frame': Path(out) / 'detections_single_frame.csv', 'sequence': Path(out) / 'detections_sequence.csv'})\n"
            "thresholds = operating_thresholds(S, dets, split=split, fp_rate=fp_rate)\nthresholds",
        ),
        (
            "code",
            "scrubber = Scrubber(S, dets, thresholds=thresholds, split=split,\n"
            "                    clip_id=clips[0] if clips else None)\nscrubber",
        ),
        (
            "md",
            "## What to look for\n\n* **Mimics.** A fat lobule can look like a mass for a few frames, then dissolve "
            "into the fat layer. A single-frame detector may mark it; a model that remembers the previous frames "
            "sees that it does not persist. Use *next false positive* to find them.\n* **Artifacts.** Loss of probe "
            "contact throws a dark shadow for a few frames; reverberation adds bright bands. Both pass quickly.\n"
            "* **Poorly seen frames.** Pressure and angle change a mass's contrast, so some frames show it poorly. "
            "A scan-level reader only needs one good look, which is why a mass counts as found when any frame's "
            "mark hits it.\n* **Thresholds.** The sliders start at each model's operating point at the FP/scan "
            "rate of the parameters; lowering one shows what the model almost marked.",
        ),
        (
            "md",
            "## Pages that need no Python\n\nThe same view as a self-contained web page per clip (frames embedded as "
            "compressed images), for reports and teaching handouts: it opens in any browser, offline.",
        ),
        (
            "code",
            "pages = write_pages(S, dets, thresholds, Path(out) / 'scrubber', clips or [scrubber.clip_pick.value])\npages",
        ),
    ]
)

compare = nb(
    [
        (
            "md",
            "# 4. Compare the models: the study's table and figures\n\n"
            "**FROC.** A detector marks places it believes hold a mass, each with a score. Lowering the score "
            "threshold finds more masses (higher *sensitivity*) but also marks more places that are not masses "
            "(*false positives*). The free-response ROC (FROC) curve plots sensitivity against the number of false "
            "positives, over all thresholds.\n\n"
            "**Why per scan?** A radiologist reviews a whole sweep, not single frames. A mass counts as found when any "
            "mark on any frame lands on it. The marks that land on no mass are linked across neighbouring frames into "
            "tracks, and each track counts as *one* false positive: a fat lobule mistaken for a mass over ten frames is "
            "one false alarm for the reader. Dividing by the number of scans (lesion-free scans included) gives "
            "**false positives per scan**; the study reports sensitivity at 0.1, 0.2 and 0.5 of them.",
        ),
        (
            "code",
            COMMON
            + '''
split = "test"
bootstrap = 2000
fp_rates = [0.1, 0.2, 0.5]
hit = "center"''',
            ["parameters"],
        ),
        (
            "code",
            "import usbkit.report.nbsetup; usbkit.report.nbsetup.setup()\nfrom pathlib import Path\nfrom IPython.display import Markdown, display\nfrom usbkit.report.steps import ensure_study\n"
            "from usbkit.evaluation.results import EvalConfig, evaluate_study, table_markdown\nfrom usbkit.report import figures as F\n\n"
            "study_path = ensure_study(study, out, preset=preset, seed=seed, patients=patients)\n"
            "dets = {'single frame': Path(out) / 'detections_single_frame.csv', 'sequence': Path(out) / 'detections_sequence.csv'}\n"
            "cfg = EvalConfig(hit=hit, fp_rates=tuple(fp_rates), n_boot=bootstrap, seed=seed, split=split)\n"
            "results, extras = evaluate_study(study_path, dets, Path(out) / 'results', cfg, figures=True, return_extras=True)\n"
            "display(Markdown(table_markdown(results)))",
        ),
        (
            "md",
            "## The paired test\n\nBoth models read the *same* scans, so the comparison is **paired**: the question is not "
            "whether each model is good, but whether one finds masses the other misses more often than the reverse.\n\n"
            "* **McNemar's exact test** looks only at the masses on which the two models disagree at their own threshold "
            "(found by A only, found by B only). If the models were equally good, each disagreement would go either way "
            "like a coin toss.\n* The **paired bootstrap over patients** redraws the cohort many times (whole patients, "
            "with all their scans) and recomputes both curves each time. The spread of the difference gives a 95% "
            "interval; the P value asks how often the difference falls on the other side of zero.\n\n"
            "With a small test set the intervals are wide: an honest result, not a failure.",
        ),
        ("code", "F.sensitivity_bars(results)"),
        (
            "md",
            "## FROC curves\n\nThe shaded bands are 95% bootstrap bands over patients; the dots are the study's operating "
            "points. The black markers in the previous figure are the published values of Yuan & Jia (2022), from 506 "
            "real patients, for orientation only: the synthetic cohort is not their data.",
        ),
        ("code", "F.froc_figure(results, extras['boot']['grid'], extras['grid'])"),
        (
            "md",
            "## Frame-level FROC\n\nCounted frame by frame instead (every lesion box a unit, every unmatched mark a false "
            "positive, per frame), the single-frame view of the same detections.",
        ),
        (
            "code",
            "from IPython.display import Image\nImage(str(Path(out) / 'results' / 'fig4_frame_froc.png')) if (Path(out) / 'results' / 'fig4_frame_froc.png').exists() else None",
        ),
        (
            "md",
            "## Examples\n\nA true positive, a false positive and a miss of each model at 0.5 FP/scan.",
        ),
        (
            "code",
            "Image(str(Path(out) / 'results' / 'fig3_gallery.png')) if (Path(out) / 'results' / 'fig3_gallery.png').exists() else None",
        ),
        (
            "md",
            "## Whole-curve summary and the literature bridge\n\nThe **JAFROC figure of merit** is the probability that a "
            "mass is rated higher than the most suspicious false mark of a scan (1 is perfect); **AP50** is the frame-level "
            "average precision used by the published video-detection work.",
        ),
        (
            "code",
            "import pandas as pd\npd.DataFrame({n: {'JAFROC FOM': m['jafroc_fom'], 'AP50 (frame level)': m['ap50']} "
            "for n, m in results['models'].items()}).T",
        ),
    ]
)

DEST = Path(__file__).resolve().parents[1] / "usbkit" / "report" / "notebooks"
DEST.mkdir(exist_ok=True)
for name, n in [
    ("01_explore", explore),
    ("02_train", train),
    ("03_scrub", scrub),
    ("04_compare", compare),
]:
    nbf.write(n, DEST / f"{name}.ipynb")
print("ok")
