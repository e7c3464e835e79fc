"""Analysis commands: ``analyze`` runs the analysis suite, ``compare`` tables stored results.

``register(app)`` adds both commands to a typer app whose callback stores a
``workbench.cli.CliState`` in ``ctx.obj``, as the main ``workbench`` app does. Torch and the
analysis modules load inside the commands, so ``workbench --help`` stays fast.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from workbench.analysis.results import AnalysisReport
    from workbench.analysis.settings import AnalysisSettings


class Analysis(str, enum.Enum):
    bound = "bound"
    zero_shot = "zero_shot"
    generation = "generation"
    infill = "infill"


class ZeroShotCorpus(str, enum.Enum):
    wikitext2 = "wikitext2"
    wikitext103 = "wikitext103"
    ptb = "ptb"
    lambada = "lambada"
    lm1b = "lm1b"


class SpanLayout(str, enum.Enum):
    middle = "middle"
    spread = "spread"
    start = "start"
    end = "end"


class TableFormat(str, enum.Enum):
    table = "table"
    csv = "csv"
    markdown = "markdown"


class SamplingPredictor(str, enum.Enum):
    euler = "euler"
    analytic = "analytic"


NO_REFERENCE = "none"


def register(app: typer.Typer) -> None:
    """Add the ``analyze`` and ``compare`` commands to ``app``."""
    from workbench.cli import handle_errors

    app.command()(handle_errors(analyze))
    app.command()(handle_errors(compare))


def _option(kind: Any, *names: str, help: str, **limits: Any) -> Any:
    """Return an ``Annotated`` optional option type, for the long option list of ``analyze``."""
    return Annotated[Optional[kind], typer.Option(*names, help=help, **limits)]


QuickOption = Annotated[
    bool, typer.Option("--quick", help="Small settings for a smoke test: about a minute on a CPU for a small model.")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
AnalysesOption = _option(list[Analysis], "--analysis", "-a", help="Run only this analysis; repeatable. [default: all]")
RunOption = _option(int, "--run", help="Analyse this run instead of the newest (one experiment only).")
BoundTimesOption = _option(
    int, help="Monte Carlo times K per block for the bound. [default: 1000; 8 with --quick]", min=2
)
BoundBlocksOption = _option(int, help="Test blocks for the bound. [default: the whole split; 16 with --quick]", min=1)
ZeroShotOption = _option(list[ZeroShotCorpus], "--zero-shot", help="Zero-shot corpus; repeatable. [default: all five]")
ZeroShotFilesOption = _option(
    list[str], "--zero-shot-files", help="Local text for a zero-shot corpus, NAME=PATH_OR_GLOB, read whole; repeatable."
)
ZeroShotBlocksOption = _option(int, help="Blocks per zero-shot corpus. [default: all; 8 with --quick]", min=1)
SamplesOption = _option(int, help="Unconditional samples for generation metrics. [default: 64; 8 with --quick]", min=2)
StepsOption = _option(int, help="Sampling steps. [default: the run's diffusion.sampling.steps; 32 with --quick]", min=1)
PredictorOption = _option(SamplingPredictor, help="Predictor. [default: the run's diffusion.sampling.predictor]")
ReferenceOption = _option(
    str,
    help="Causal LM for generative perplexity: Hugging Face name, local folder, or 'none'. "
    "A name given here is downloaded when it is not in the Hugging Face cache, unless HF_HUB_OFFLINE is set; "
    "the default is used only from the cache, so generative perplexity is skipped when it is not cached. "
    "[default: gpt2-large; gpt2 with --quick]",
)
BleuOrderOption = _option(int, help="Max n-gram order of Self-BLEU and span BLEU. [default: 4]", min=1)
InfillExamplesOption = _option(int, help="Test blocks to infill. [default: 32; 4 with --quick]", min=1)
SpanLengthOption = _option(int, help="Tokens per hidden span. [default: 16]", min=1)
LayoutOption = _option(SpanLayout, help="Where the hidden spans go. [default: middle]")
SpansOption = _option(int, help="Number of spans for --infill-layout spread. [default: 1]", min=1)
BatchOption = _option(int, help="Sequences per forward pass. [default: 8]", min=1)
SeedOption = _option(int, help="Seed of every random draw. [default: 0]", min=0)
DeviceOption = _option(str, help="Torch device, such as cpu or cuda:0. [default: cuda if available]")
OutOption = _option(Path, help="Folder that receives analysis_results/<exp_id>/. [default: the store's folder]")


def analyze(
    ctx: typer.Context,
    exp_ids: Annotated[list[str], typer.Argument(help="Experiments to analyse, each with its newest trained run.")],
    quick: QuickOption = False,
    analyses: AnalysesOption = None,
    run_id: RunOption = None,
    bound_times: BoundTimesOption = None,
    bound_blocks: BoundBlocksOption = None,
    zero_shot: ZeroShotOption = None,
    zero_shot_files: ZeroShotFilesOption = None,
    zero_shot_blocks: ZeroShotBlocksOption = None,
    samples: SamplesOption = None,
    steps: StepsOption = None,
    predictor: PredictorOption = None,
    reference_model: ReferenceOption = None,
    self_bleu_order: BleuOrderOption = None,
    infill_examples: InfillExamplesOption = None,
    infill_span_length: SpanLengthOption = None,
    infill_layout: LayoutOption = None,
    infill_spans: SpansOption = None,
    batch_size: BatchOption = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    out: OutOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run the analysis suite on experiments and store the results.

    Measures the likelihood bound on the test split, zero-shot bounds, sample diversity and
    quality, and infilling. Writes analysis_results/<exp_id>/summary.yaml, samples.jsonl and
    infill_examples.jsonl, and adds the metrics to the store for `workbench compare`.
    """
    from workbench.analysis.loading import AnalysisError
    from workbench.cli import state

    if run_id is not None and len(exp_ids) > 1:
        raise AnalysisError(
            f"--run {run_id} names one run, but {len(exp_ids)} experiments were given; analyse one at a time"
        )
    options = {
        "analyses": tuple(item.value for item in analyses) if analyses else None,
        "bound_times": bound_times, "bound_blocks": bound_blocks,
        "zero_shot_corpora": tuple(item.value for item in zero_shot) if zero_shot else None,
        "zero_shot_files": parse_zero_shot_files(zero_shot_files or []) or None,
        "zero_shot_blocks": zero_shot_blocks, "num_samples": samples, "steps": steps,
        "predictor": predictor.value if predictor else None, "self_bleu_order": self_bleu_order,
        "infill_examples": infill_examples, "infill_span_length": infill_span_length,
        "infill_layout": infill_layout.value if infill_layout else None, "infill_spans": infill_spans,
        "batch_size": batch_size, "seed": seed, "device": device or default_device(),
    }  # fmt: skip
    explicit_options = {key: value for key, value in options.items() if value is not None}
    settings = build_settings(quick, reference_model, explicit_options)
    check_device(settings.device)

    from workbench import cli_format

    console = cli_format.console()
    with state(ctx).workbench() as workbench:
        reports = [_analyze_one(workbench.store, exp_id, settings, run_id, out, quiet) for exp_id in exp_ids]
    for report in reports:
        print_report(console, report)
    if len(reports) > 1:
        from workbench.analysis.compare import load_comparison

        with state(ctx).workbench() as workbench:
            console.print(load_comparison(workbench.store, exp_ids).to_rich())


def compare(
    ctx: typer.Context,
    exp_ids: Annotated[list[str], typer.Argument(help="Experiments to compare, in column order.")],
    fmt: Annotated[
        TableFormat, typer.Option("--format", "-f", help="table (for the terminal), csv or markdown.")
    ] = TableFormat.table,
) -> None:
    """Show the stored analysis results of experiments side by side, best value per metric marked."""
    from workbench import cli_format
    from workbench.analysis.compare import load_comparison
    from workbench.cli import state

    with state(ctx).workbench() as workbench:
        table = load_comparison(workbench.store, exp_ids)
    if not table.rows:
        typer.echo(f"No analysis results for {', '.join(exp_ids)}; run `workbench analyze {' '.join(exp_ids)}` first.")
        return
    if fmt == TableFormat.table:
        cli_format.console().print(table.to_rich())
    else:
        typer.echo(table.render(fmt.value), nl=False)


def parse_zero_shot_files(items: list[str]) -> dict[str, str]:
    """Parse ``NAME=PATH`` items into a dict; raise AnalysisError on a malformed item."""
    from workbench.analysis.loading import AnalysisError

    files = {}
    for item in items:
        name, separator, path = item.partition("=")
        if not separator or not name or not path:
            raise AnalysisError(
                f"invalid --zero-shot-files {item!r}: use NAME=PATH, "
                "for example wikitext2=/data/wikitext-2-raw/train.txt"
            )
        files[name] = path
    return files


def build_settings(quick: bool, reference_model: str | None, options: dict[str, Any]) -> AnalysisSettings:
    """Build validated settings; an invalid combination raises AnalysisError with the reason."""
    from workbench.analysis.loading import AnalysisError
    from workbench.analysis.settings import AnalysisSettings

    if reference_model is not None:
        options["reference_model"] = None if reference_model.lower() == NO_REFERENCE else reference_model
        options["download_reference"] = options["reference_model"] is not None
    try:
        return AnalysisSettings.quick(**options) if quick else AnalysisSettings(**options)
    except ValueError as error:
        raise AnalysisError(f"invalid analysis settings: {error}") from error


def check_device(device: str) -> None:
    """Raise AnalysisError unless torch can use ``device`` on this host."""
    import torch

    from workbench.analysis.loading import AnalysisError

    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise AnalysisError(f"invalid --device {device!r}: {error}; use cpu, cuda or cuda:N") from error
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise AnalysisError(f"--device {device} needs CUDA, which this host does not have; use --device cpu")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise AnalysisError(
            f"--device {device} names GPU {parsed.index}, but this host has {torch.cuda.device_count()}; "
            f"use an index below {torch.cuda.device_count()}"
        )


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _analyze_one(
    store: Any, exp_id: str, settings: AnalysisSettings, run_id: int | None, out: Path | None, quiet: bool
) -> AnalysisReport:
    from workbench.analysis.progress import Progress, RichProgress
    from workbench.analysis.runner import analyze_experiment

    if quiet:
        return analyze_experiment(store, exp_id, settings, run_id=run_id, output_root=out, progress=Progress())
    with RichProgress() as progress:
        return analyze_experiment(store, exp_id, settings, run_id=run_id, output_root=out, progress=progress)


def print_report(console: Console, report: AnalysisReport) -> None:
    """Print each analysis's status and metrics, then where the files went."""
    from rich.markup import escape

    console.print(f"[bold]{escape(report.exp_id)}[/] (run {report.run_id}): analysed in {report.wall_time_s:.1f} s")
    for result in report.results:
        line = f"  {result.name}: {result.status} ({result.wall_time_s:.1f} s)"
        if result.message:
            line += f": {result.message}"
        console.print(escape(line))
        for name, measurement in result.metrics.items():
            stderr = f" ± {measurement.stderr:.4g}" if measurement.stderr is not None else ""
            console.print(escape(f"    {name:<36} {measurement.value:.4g}{stderr} {measurement.unit}"))
    console.print(escape(f"  results: {report.output_dir}"))
