"""Build the four usbkit notebooks (usbkit/report/notebooks/*.ipynb) from this one source.

Run from the repository root after editing: ``.venv/bin/python notebooks/build.py``.
The parameters cells are generated from :class:`usbkit.report.builder.ReportConfig`, so
every default (epochs, bootstrap replicates, FP rates, ...) is set in one place; a test
checks that the shipped notebooks are exactly what this script builds.
"""

from pathlib import Path

import nbformat as nbf

from usbkit.report.builder import NOTEBOOKS, ReportConfig

DEST = Path(__file__).resolve().parents[1] / "usbkit" / "report" / "notebooks"

#: What each parameter means, as the parameters cells say it.
PARAMETER_NOTES = {
    "study": "a study folder; empty: the built-in synthetic cohort in OUT/study",
    "out": "the run folder: everything these notebooks write goes here (run.json)",
    "seed": "one seed: same cohort, training and bootstrap",
    "preset": "synthetic cohort size when no study is given: quick | study | paper",
    "patients": "another number of synthetic patients (teaching, tests); None: the preset's",
    "split": "the clips the models are run on and evaluated",
    "train": "True: train both models here; False: use the shipped checkpoints",
    "epochs": "training epochs (when train is True)",
    "train_settings": "other TrainConfig/ModelConfig settings, e.g. {'input_size': [192, 224]}",
    "device": "auto picks a GPU when there is one",
    "bootstrap": "paired bootstrap replicates over patients",
    "fp_rates": "false positives per scan of the study's table",
    "hit": "hit rule: center (the detection's centre in the box) or iou:T",
}
COMMON = ("study", "out", "seed", "preset", "patients")


def parameters(*names: str, extra: str = "") -> str:
    """A parameters cell holding ReportConfig's defaults for ``names``."""
    defaults = ReportConfig().notebook_parameters()
    lines = [f"{n} = {defaults[n]!r}" for n in names]
    width = max(len(line) for line in lines) + 2
    out = [f"{line:<{width}}# {PARAMETER_NOTES[n]}" for line, n in zip(lines, names)]
    return "\n".join(out) + (("\n" + extra) if extra else "")


def nb(cells):
    """A notebook from ``(kind, source[, tags])`` tuples (kind ``md`` or ``code``)."""
    n = nbf.v4.new_notebook()
    n.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    n.metadata["language_info"] = {"name": "python"}
    out = []
    for kind, src, *tags in cells:
        c = nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src)
        c.id = f"cell-{len(out)}"
        if tags:
            c.metadata["tags"] = tags[0]
        out.append(c)
    n.cells = out
    return n


SETUP = "from usbkit.report.steps import setup_notebook\nsetup_notebook()\n"


explore = nb(
    [
        (
            "md",
            "# 1. Explore the cohort\n\nThis notebook looks at the clips before any model does: who the patients are, how the clips are split, how large the masses are and for how many frames each one stays in view. Run it top to bottom; change the **parameters** cell to look at your own study.",
        ),
        ("code", parameters(*COMMON), ["parameters"]),
        (
            "code",
            SETUP
            + "import usbkit.report.explore as ex\nfrom usbkit.report.steps import start_run\n\n"
            "run = start_run(out, study, preset=preset, seed=seed, patients=patients)\n"
            "S = run.load_study()\ndisplay(ex.cohort_summary(S))\nex.study_notes(S)  # what this study lacks, if anything",
        ),
        (
            "md",
            "## Patients, clips and splits\n\nEvery **split is by patient**: all clips of one woman are in the same split. If a patient's clips were spread over training and test sets, the test would partly measure memory of that patient's anatomy and look better than it is. A *lesion-free clip* is a scan with no mass in it; it still counts when false positives per scan are computed.",
        ),
        (
            "md",
            "## What a synthetic frame shows\n\nThe built-in cohort imitates a linear-probe breast view. From the top: the bright **skin** line; **subcutaneous fat**, dark lobules separated by bright, curved **Cooper's ligaments**; the bright **fibroglandular** band where masses grow; a thin dark band of **retromammary fat**; and the striated **pectoral muscle**. A malignant mass is irregular, often taller than wide and may cast a **posterior shadow**; a benign one is smooth, wider than tall and may show **posterior enhancement**. Hover over the sketch to name each pixel. (This figure is drawn from the synthetic generator; for your own clips it shows what the synthetic ones look like.)",
        ),
        ("code", "ex.anatomy_figure()"),
        ("code", "ex.lesion_figure(S)"),
        (
            "md",
            "## How long is a mass in view?\n\nIn a freehand sweep the probe moves across the breast, so a mass *enters* the imaging plane, grows to its largest section and *leaves*. A single frame shows one moment; the sequence shows the whole passage. Each line is one lesion: its box area frame by frame.",
        ),
        ("code", "ex.visibility_figure(S)"),
        (
            "md",
            "## Example frames\n\nWhere the study has lesion boxes, the green dashed outlines are the ground truth (the title says when the clip has none). In the synthetic cohort every frame is made by the convolution model of B-mode imaging (scatterers, point-spread function, envelope, log compression), so the grain you see is real speckle. Notice how the contrast of the mass changes from frame to frame, as it does with probe pressure and angle.",
        ),
        ("code", "ex.example_frames_figure(S)"),
        (
            "md",
            "## Intensity statistics\n\nMasses are mostly *hypoechoic*: darker than the tissue around them. The overlap of the two histograms is why a detector cannot simply threshold gray levels: fat lobules are dark too.",
        ),
        ("code", "ex.intensity_figure(S)"),
    ]
)

train = nb(
    [
        (
            "md",
            "# 2. Train the two detectors\n\nThe study compares a **single-frame** detector, which judges each frame on its own, with a **sequence** detector: the same single-frame network with a small **temporal part** added, which looks at the frames before and after each frame (a stored cine is read after the scan, so the frames after are there too) and corrects the frame's marks: a mark that the neighbouring frames confirm at the same place gains, one they do not confirm loses. The temporal part starts as \"change nothing\", so the sequence detector begins exactly as the single-frame one and every difference between them is what reading the neighbouring frames earned. With `train = False` the notebook uses the small checkpoints shipped with usbkit (trained on a separate synthetic training cohort, another seed of the same generator); with `train = True` it trains the single-frame detector from scratch on the study's `train` split, then the temporal part on top of it, each keeping the epoch with the best validation frame-level AP50 (how well its boxes match the masses over every validation frame, see notebook 3).\n\nThe notebook also prepares the study's two other rows: the **single frame + tracking** arm (the single-frame marks linked over frames and rescored by how long they persist, no training) and the **temporal ablation** (the sequence detector with each frame read as if it had no neighbours).",
        ),
        (
            "code",
            parameters(*COMMON, "train", "epochs", "train_settings", "device", "split"),
            ["parameters"],
        ),
        (
            "code",
            SETUP
            + "from usbkit.report.steps import (LiveLoss, cohort_note, detect_all, loss_figure,\n"
            "                                 start_run, train_or_load, training_logs)\n\n"
            "run = start_run(out, study, preset=preset, seed=seed, patients=patients)\n"
            "print(cohort_note(run, preset, patients))",
        ),
        (
            "md",
            "## Training\n\nEach epoch shows the loss (how wrong the heatmap, box size and offset predictions are on training windows) and, on patients the model never trains on, three validation measures: the **JAFROC figure of merit** (the whole scan-level FROC curve in one number), the **sensitivity at 0.5 false positives per scan** (the study's own measure) and the **frame-level AP50** (how well the boxes match the masses frame by frame: a sound detector, whether or not it uses time). The epoch with the best AP50 is kept: it is counted over thousands of boxes, so it moves smoothly from epoch to epoch, where the scan-level measures of a few dozen validation lesions jump by whole lesions. The temporal part learns on top of the trained single-frame detector, which stays exactly as it is (its loss is the heatmap's alone). Every other setting of that recipe (working resolution, learning rate, batch, augmentation, ...) goes in the `train_settings` parameter by its name in `TrainConfig` or `ModelConfig`, e.g. `{'input_size': [192, 224], 'augment': 'ultrasound'}` (the names and their meaning: `usbkit train --help`). The curves update after every epoch.",
        ),
        (
            "code",
            "live = LiveLoss()\nif train:\n    display(live.widget)\n"
            "refs = train_or_load(run, train=train, epochs=epochs, device=device, seed=seed,\n"
            "                     settings=train_settings, on_epoch=live.update if train else None)\nrefs",
        ),
        ("code", "loss_figure(training_logs(run))"),
        (
            "md",
            "## Run every arm over the test clips\n\nDetections are written down to score 0.001 (a shorter list would cut the FROC curve short) in original-frame pixels, one CSV per arm, recorded in the run's manifest `OUT/run.json` for the next notebooks: the single-frame detector, its tracking arm (`usbkit track`: each mark's score times min(1, L / 8), L the number of frames its track lasts), the sequence detector, and the sequence detector with its temporal context cut (`usbkit detect --context none`).",
        ),
        ("code", "detect_all(run, split=split, device=device)\nrun.detections"),
    ]
)

compare = nb(
    [
        (
            "md",
            "# 3. Compare the models: the study's table and figures\n\n**FROC.** A detector marks places it believes hold a mass, each with a score. Lowering the score threshold finds more masses (higher *sensitivity*) but also marks more places that are not masses (*false positives*). The free-response ROC (FROC) curve plots sensitivity against the number of false positives, over all thresholds.\n\n**Why per scan?** A radiologist reviews a whole sweep, not single frames. A mass counts as found when any mark on any frame lands on it. The marks that land on no mass are linked across neighbouring frames into tracks, and each track counts as *one* false positive: a fat lobule mistaken for a mass over ten frames is one false alarm for the reader. Dividing by the number of scans (lesion-free scans included) gives **false positives per scan**; the study reports sensitivity at 0.1, 0.2 and 0.5 of them.",
        ),
        ("code", parameters(*COMMON, "bootstrap", "fp_rates", "hit"), ["parameters"]),
        (
            "code",
            SETUP + "from IPython.display import Markdown, display\n"
            "from usbkit.evaluation.results import EvalConfig, table_markdown\n"
            "from usbkit.report import figures as F\nfrom usbkit.report.run import Run\n"
            "from usbkit.report.steps import evaluate_run\n\n"
            "run = Run.open(out)\n"
            "config = EvalConfig(hit=hit, fp_rates=tuple(fp_rates), n_boot=bootstrap, seed=seed)\n"
            "results = evaluate_run(run, config)\ndisplay(Markdown(table_markdown(results)))",
        ),
        (
            "md",
            "## Three arms and what time adds\n\nThe table has a row for each way of reading the scans. **Single frame**: the detector judges every frame alone. **Single frame + tracking**: the same marks, linked from frame to frame, and each mark's score scaled down when its track is short (a mark seen on 2 frames keeps a quarter of its score, one seen on 8 frames or more keeps all of it); nothing is trained. **Sequence**: the network itself reads the neighbouring frames. If the sequence row beats the tracking row, the network learned more from time than *does this mark persist?*; if not, linking marks would have done as well.\n\nThe last row, **sequence (no context)**, is the same sequence checkpoint with each frame read as if it had no neighbours: the *temporal ablation*. The sentence under the table says how many points reading the neighbouring frames adds at each FP rate, with its interval and P value. A sequence model that does not use time shows no gain there, however good its row.",
        ),
        (
            "md",
            "## The paired test\n\nBoth models read the *same* scans, so the comparison is **paired**: the question is not whether each model is good, but whether one finds masses the other misses more often than the reverse.\n\n* **McNemar's exact test** looks only at the masses on which the two models disagree at their own threshold (found by A only, found by B only). If the models were equally good, each disagreement would go either way like a coin toss.\n* The **paired bootstrap over patients** redraws the cohort many times (whole patients, with all their scans) and recomputes both curves each time. The spread of the difference gives a 95% interval; the P value asks how often the difference falls on the other side of zero.\n\nWith a small test set the intervals are wide: an honest result, not a failure.",
        ),
        ("code", "F.sensitivity_bars(results)"),
        (
            "md",
            "## Power: could this study have seen a difference?\n\nA test that finds no significant difference has not shown that the models are equal: the study may simply have been too small to see it. The **power** of a comparison is the probability that it comes out significant (P < 0.05) *if* the models really differ by a given amount. usbkit estimates it by simulation: it builds thousands of imaginary studies by drawing this study's patients again, with replacement and with all their scans, finds each model's threshold again in every imaginary study and applies the same test. The share of imaginary studies in which the test rejects is the power; repeated for growing numbers of patients it gives the curve below, and the number of patients a study needs for 80% power. The dashed curve is the textbook formula, which treats lesions as independent; lesions of one patient are not, which is why the simulation is the number to plan with.",
        ),
        (
            "code",
            "from usbkit.evaluation.power import PlanConfig, plan_study\n\n"
            "plan = plan_study(results, PlanConfig(fp_rate=results['view_fp_rate'], seed=seed))\n"
            "display(Markdown(plan.summary()))\n"
            "F.power_figure(plan) if plan.effect['diff'] else None  # no curve when they agree",
        ),
        (
            "md",
            "### Planning for a stated effect\n\nWhen the pilot shows no difference, or one too small for any study in reach, its own effect cannot guide a study: one states the effect the study should be able to detect, a pair of sensitivities. Here usbkit takes the difference the published study reported at the same FP rate; `usbkit plan --effect` does the same for any pair you choose.",
        ),
        (
            "code",
            "from usbkit.report.findings import stated_effect\n\n"
            "words, stated = stated_effect(results, plan, seed=seed)\n"
            "display(Markdown(words))\nF.power_figure(stated) if stated else None",
        ),
        (
            "md",
            "## What the study found, in words\n\nThe same numbers as sentences, generated from the results (never typed by hand): the cohort, each comparison with its interval and whether it is significant, how the rows stand beside the published study, and the power the comparison had.",
        ),
        (
            "code",
            "from usbkit.report.findings import findings_markdown\n\n"
            "display(Markdown(findings_markdown(results, plan)))",
        ),
        (
            "md",
            "## FROC curves\n\nThe shaded bands are 95% bootstrap bands over patients; the dots are the study's operating points. The black markers in the previous figure are the published values of Yuan & Jia (2022), from 506 real patients, for orientation only: the patients of this study are not theirs.",
        ),
        ("code", "F.froc_figure(results)"),
        (
            "md",
            "## Frame-level FROC\n\nCounted frame by frame instead (every lesion box a unit, every unmatched mark a false positive, per frame), the single-frame view of the same detections.",
        ),
        ("code", "F.froc_figure(results, level='frame')"),
        (
            "md",
            "## Examples\n\nA true positive, a false positive and a miss of each model at its operating point, judged by the run's hit rule.",
        ),
        ("code", "F.gallery_figure(run.load_study(), run.read_detections(), results)"),
        (
            "md",
            "## Whole-curve summary and the literature bridge\n\nThe **JAFROC figure of merit** is the probability that a mass is rated higher than the most suspicious false mark of a scan (1 is perfect); **AP50** is the frame-level average precision used by the published video-detection work.",
        ),
        ("code", "F.summary_table(results)"),
        (
            "md",
            "## The numbers of the published video-detection work\n\nPapers on lesion detection in breast-ultrasound *videos* count frame by frame, with all test frames pooled. **AP** (COCO's average precision, over box-overlap thresholds 0.5 to 0.95; **AP50** and **AP75** at 0.5 and 0.75) summarises how well the marks are ranked and placed. **Pr80** is the precision, the share of marks that land on a mass, when the model is set to find 80% of the lesion frames (**Pr90**: 90%). **FP80** is what a scanning clinician would suffer at that same setting: false alarms per minute, where a false mark that persists over neighbouring frames is one *chain*, one alarm. It is given with each clip's own frame rate and with the 30 frames per second the published tables assume. *not reached*: the model never finds that share of the lesion frames, whatever its threshold; **frame recall reached** is the share it does find with every mark kept (box overlap at least 0.5).\n\nEach model has two rows. **usbkit** follows the definitions of docs/metrics.md. **UltraDet's code** is the reading of the evaluation code published with UltraDet's table (where CVA-Net and the other baselines were measured): it matches each mark only to its best-overlapping box, reads precision through every ranked mark rather than through the hits only, interpolates the score threshold and keeps marks strictly above it, links a false mark to the earliest of equally overlapping earlier marks, and divides the sum of the ten APs by 9. Set that row beside the published numbers; where a recall level is not reached, the published code still prints a number, shown here marked *(not reached)*. docs/metrics.md lists each difference with a worked example.",
        ),
        ("code", "F.literature_table(results)"),
        (
            "md",
            "## Time to first detection\n\nA clinician sweeping the probe sees a mass for a few seconds; a mark that appears only late in that passage may come after her eye has moved on. For every lesion, the **time to first detection** is the time from the first frame on which the lesion is visible to the first frame on which the model, at its operating threshold, puts a mark on it. The curves show the share of all lesions marked within t seconds (each ends at the model's sensitivity: lesions never marked are counted apart, as *not found*); the table gives medians, and compares the two models on the lesions both find: how many each marks first, how many both mark on the same frame, the mean and median difference, and the Wilcoxon signed-rank test (which looks only at the lesions where the two differ, so a median difference of 0 can go with a small P). No public tool reports this number.",
        ),
        (
            "code",
            "from usbkit.report.findings import ttfd_markdown\n\n"
            "display(F.ttfd_table(results))\ndisplay(Markdown(ttfd_markdown(results)))\n"
            "F.ttfd_figure(results)",
        ),
    ]
)

scrub = nb(
    [
        (
            "md",
            "# 4. Look through the clips\n\nThe viewer shows one clip frame by frame: the ground truth in green, drawn on top, "
            "and each model's marks at or above its own score threshold, solid when a mark hits a lesion and dashed when it "
            "is a false positive, with its score beside it. It runs in the page: use the slider, the **play** button, or the "
            "keyboard once you have clicked the viewer (← → one frame, Page Up / Page Down ten, Home / End, space plays). "
            "Frames are numbered from 0, as in `annotations.csv`. The timeline below the picture plots each model's highest "
            "score on every frame, its threshold as a dashed line, and the frames where a lesion is in view as green bands; "
            "click or drag anywhere on it to jump. *Next miss* goes to the next lesion a model misses and *next false "
            "positive* to its next false mark; the picker above lists clips by outcome, lesion by lesion.\n\n"
            "The sliders start at each model's operating threshold: from the compare notebook's results when it has run, "
            "otherwise the one each shipped checkpoint carries. For your own clips, set `study` and `detections` (the files "
            "`usbkit detect` wrote) below.",
        ),
        (
            "code",
            parameters(*COMMON)
            + "\ndetections = {}  # your own detection files, e.g. {'sequence': 'mine-sequence.csv'}; empty: the run's"
            "\nclips = []       # clip ids to write static pages for; empty: the clip the picker shows"
            "\nfp_rate = None   # thresholds start at each model's operating point here; None: the results' own",
            ["parameters"],
        ),
        (
            "code",
            SETUP + "from usbkit.report.steps import open_scrubber, write_scrubber_pages\n\n"
            "scrubber = open_scrubber(out, study=study, detections=detections, fp_rate=fp_rate,\n"
            "                         clip=clips[0] if clips else None)\n"
            "scrubber",
        ),
        (
            "md",
            "## What to look for\n\n* **Mimics.** A fat lobule can look like a mass for a few frames, then dissolve into the fat layer. A single-frame detector may mark it; a model that reads the neighbouring frames sees that it does not persist. Use *next false positive* to find them (on clips without annotations, *next mark*).\n* **Artifacts.** Loss of probe contact throws a dark shadow for a few frames; reverberation adds bright bands. Both pass quickly.\n* **Poorly seen frames.** Pressure and angle change a mass's contrast, so some frames show it poorly. A scan-level reader only needs one good look, which is why a mass counts as found when any frame's mark hits it.\n* **Thresholds.** The sliders start at each model's operating point; lowering one shows what the model almost marked.",
        ),
        (
            "md",
            "## Pages that need no Python\n\nThe same viewer as a self-contained web page per clip (frames embedded as compressed images), for reports and teaching handouts: it opens in any browser, offline.",
        ),
        (
            "code",
            "pages = write_scrubber_pages(scrubber, f'{out}/scrubber', clips or [scrubber.clip_pick.value])\n"
            "[page.name for page in pages]",
        ),
        (
            "md",
            "## Annotate your own clips, with the detector's help\n\n"
            "Every number above rests on the ground truth: a box around each mass on every frame where it is seen. "
            "For your own clips you draw it here, in the same viewer, and the shipped detector helps. The path is "
            "**import clips → propose → correct → save → evaluate**, practised below on a few clips of the built-in "
            "cohort with their annotations removed (a copy in `OUT/practice`; your saved work there is kept).\n\n"
            "1. **Import clips.** The cell below imports the clips as `usbkit import clips` does with a folder of yours: "
            "a study with no lesion yet.\n"
            "2. **Propose.** Press *propose from detections*: the detector's marks, linked over frames, appear as "
            "orange dashed *draft lesions* with their score. Move the draft threshold to see fainter or surer ones.\n"
            "3. **Correct.** *Accept* a draft that is a mass (key A), *reject* one that is not (key X). An accepted "
            "draft becomes a lesion with a few key frames; drag a box to move it, a corner to resize it, wherever "
            "it is off. Draw a mass the detector missed yourself: drag a box on one frame, go a few frames on and "
            "drag again; the frames between are filled in (dashed). Press E on the first frame where a lesion is "
            "no longer seen. Choose each lesion's pathology in the list. Z undoes.\n"
            "4. **Save** (key S). Every frame of every lesion goes to `annotations.csv`; the key frames, and which "
            "boxes you drew or confirmed, to `annotation_keyframes.csv`; the previous file to `annotation_backups/`.\n"
            "5. **Evaluate.** The last cell measures the detector against what you saved. (Evaluating a detector "
            "against boxes you only accepted from that same detector would be circular: correct them, and draw "
            "what it missed.)\n\n"
            "All the keys are listed beside the viewer; docs/annotate.md says more.",
        ),
        (
            "code",
            "from usbkit.io.study import load_study\n"
            "from usbkit.report.steps import practice_outcome, practice_study\n"
            "from usbkit.viewer.scrubber import Scrubber\n\n"
            "practice = practice_study(out)\n"
            "annotator = Scrubber(load_study(practice), {}, annotate=True, propose='pretrained:sequence')\n"
            "annotator",
        ),
        ("code", "practice_outcome(practice)"),
    ]
)

NOTEBOOK_CELLS = dict(zip(NOTEBOOKS, (explore, train, compare, scrub)))


def build() -> dict:
    """The four notebooks, by name."""
    return NOTEBOOK_CELLS


#: Where the notebooks are written: inside the package (what `usbkit report` and a plain
#: `pip install` use) and beside this script (what a user opening the repository sees).
COPIES = (DEST, Path(__file__).resolve().parent)

if __name__ == "__main__":
    for folder in COPIES:
        folder.mkdir(exist_ok=True)
        for name, notebook in build().items():
            nbf.write(notebook, folder / f"{name}.ipynb")
    print("wrote", ", ".join(build()), "to", ", ".join(str(f) for f in COPIES))
