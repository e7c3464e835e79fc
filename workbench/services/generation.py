"""Generation services: unconditional samples and infilling from a run's EMA model.

A run folder contains everything sampling needs: ``model/`` (the EMA weights of the latest
checkpoint, written with ``sedd.model.save_pretrained``) and ``tokenizer/``. With ``checkpoint``
the EMA weights come from a file in ``checkpoints/`` instead, such as ``best.pt`` or an older
``step_<N>.pt``. The graph and the noise schedule come from the run's config. Infilling fixes the prompt tokens at their positions and generates the rest;
each result keeps which pieces were generated, so a display can mark them.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import GenerationCancelled, InvalidConfig, NoCheckpoint, WorkbenchError
from workbench.services.base import ServiceBase
from workbench.services.checkpoints import load_checkpoint_model, resolve_checkpoint
from workbench.services.configs import load_validated
from workbench.store import Run

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# Any bracketed marker that starts with the word MASK, so that a malformed length such as
# [MASK:abc] is reported instead of being kept as prompt text.
MASK_PATTERN = re.compile(r"\[MASK\b([^\]]*)\]")
MASK_LENGTH = re.compile(r":(\d+)")
SAMPLE_KIND = "sample"
INFILL_KIND = "infill"

ProgressCallback = Callable[[int, int], None]
# A threading.Event, or a callable that returns True once the caller wants to stop.
CancelCheck = threading.Event | Callable[[], bool]


@dataclass(frozen=True)
class Segment:
    """A piece of decoded text; ``generated`` is true for pieces the model wrote."""

    text: str
    generated: bool


@dataclass(frozen=True)
class GeneratedText:
    """One decoded sequence as consecutive segments, fixed and generated."""

    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return "".join(segment.text for segment in self.segments)

    def marked(self, opening: str = "[", closing: str = "]") -> str:
        """Return the text with every generated segment between ``opening`` and ``closing``."""
        return "".join(
            f"{opening}{segment.text}{closing}" if segment.generated else segment.text for segment in self.segments
        )


@dataclass
class _Artifacts:
    model: Any
    tokenizer: Any
    graph: Any
    noise: Any
    config: Any
    device: str
    step: int


def parse_template(template: str) -> list[str | int]:
    """Split ``"The [MASK:8] of [MASK:5]."`` into ``["The ", 8, " of ", 5, "."]``.

    Raises:
        InvalidConfig: a mask marker other than ``[MASK:N]`` with N >= 1, or no mask at all.
    """
    parts: list[str | int] = []
    position = 0
    for match in MASK_PATTERN.finditer(template):
        length = MASK_LENGTH.fullmatch(match.group(1))
        if length is None or int(length.group(1)) < 1:
            raise InvalidConfig(
                f"invalid mask marker {match.group(0)!r} at character {match.start()} of the template; "
                "expected [MASK:N] with N >= 1 tokens, such as [MASK:8]"
            )
        if match.start() > position:
            parts.append(template[position : match.start()])
        parts.append(int(length.group(1)))
        position = match.end()
    if position < len(template):
        parts.append(template[position:])
    if not any(isinstance(part, int) for part in parts):
        raise InvalidConfig(f"template {template!r} has no mask; mark the spans to generate as [MASK:N] (N tokens)")
    return parts


class GenerationServices(ServiceBase):
    """Sampling and infilling; mixed into ``Workbench``."""

    def sample(
        self,
        run_id: int,
        *,
        num: int = 4,
        steps: int | None = None,
        length: int | None = None,
        predictor: str | None = None,
        seed: int = 0,
        device: str | None = None,
        save: bool = False,
        checkpoint: str | os.PathLike[str] | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelCheck | None = None,
    ) -> list[GeneratedText]:
        """Draw ``num`` unconditional samples of ``length`` tokens from a run's EMA model.

        ``steps``, ``length`` and ``predictor`` default to the run's ``diffusion.sampling``
        settings and ``data.seq_len``. ``checkpoint`` selects the weights: ``None`` for the
        latest ``model/`` folder, else a file name in ``<run_dir>/checkpoints`` (``best.pt``,
        ``step_400.pt``) or a path to a checkpoint file. With ``save`` the texts are stored as
        kind ``sample`` at the checkpoint's step.

        ``cancel`` is a ``threading.Event`` or a callable returning True to stop, checked
        before each sampler step. Raises ``GenerationCancelled`` when it fires.
        """
        _check_positive(num=num, steps=steps, length=length)
        run = self.store.get_run(run_id)
        artifacts = _load_artifacts(run, device, checkpoint)
        length = length or artifacts.config.data.seq_len
        tokens = _draw(artifacts, num, length, steps, predictor, seed, None, progress, cancel)
        texts = [GeneratedText((Segment(artifacts.tokenizer.decode(row.tolist()), True),)) for row in tokens]
        if save:
            self.store.add_samples(run_id, artifacts.step, SAMPLE_KIND, [text.text for text in texts])
        return texts

    def infill(
        self,
        run_id: int,
        *,
        prefix: str = "",
        suffix: str = "",
        length: int = 32,
        template: str | None = None,
        num: int = 1,
        steps: int | None = None,
        predictor: str | None = None,
        seed: int = 0,
        device: str | None = None,
        save: bool = False,
        checkpoint: str | os.PathLike[str] | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelCheck | None = None,
    ) -> list[GeneratedText]:
        """Generate text between a prefix and a suffix, or in the ``[MASK:N]`` spans of a template.

        Without a template, ``length`` tokens are generated between ``prefix`` and ``suffix``.
        With ``save`` the texts are stored as kind ``infill`` with the prompt. ``checkpoint``
        and ``cancel`` work as in ``sample``.
        """
        _check_positive(num=num, steps=steps, length=length)
        run = self.store.get_run(run_id)
        if template is None and not prefix and not suffix:
            raise InvalidConfig("infill needs --prefix, --suffix or --template; to sample without a prompt use `workbench sample`")
        parts = parse_template(template) if template is not None else [prefix, length, suffix]
        prompt = template if template is not None else f"{prefix}[MASK:{length}]{suffix}"
        artifacts = _load_artifacts(run, device, checkpoint)
        infill_template = _build_template(artifacts, parts)
        tokens = _draw(artifacts, num, infill_template.length, steps, predictor, seed, infill_template, progress, cancel)
        generated = infill_template.generated_mask().tolist()
        texts = [_segments(artifacts.tokenizer, row.tolist(), generated) for row in tokens]
        if save:
            self.store.add_samples(run_id, artifacts.step, INFILL_KIND, [text.text for text in texts], [prompt] * len(texts))
        return texts


def _check_positive(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and value <= 0:
            raise InvalidConfig(f"{name} must be a positive integer, got {value}")


def _load_artifacts(run: Run, device: str | None, checkpoint: str | os.PathLike[str] | None = None) -> _Artifacts:
    if run.run_dir is None:
        raise NoCheckpoint(f"run {run.id} never started, so it has no model; see `workbench status`")
    model_dir = Path(run.run_dir) / "model"
    tokenizer_dir = Path(run.run_dir) / "tokenizer"
    checkpoint_path = resolve_checkpoint(run, checkpoint) if checkpoint is not None else None
    if checkpoint_path is None and not (model_dir / "config.json").is_file():
        raise NoCheckpoint(
            f"run {run.id} has no model folder {model_dir} yet: it is written with the first checkpoint "
            f"(training.checkpoint_every); wait for it, or sample another run"
        )
    import torch

    from sedd.data import load_tokenizer
    from sedd.graph import get_graph
    from sedd.model import load_pretrained
    from sedd.noise import get_noise

    config = load_validated(text=run.config_text, overrides=run.overrides)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = load_tokenizer(tokenizer_dir)
    if checkpoint_path is None:
        model = load_pretrained(model_dir, map_location=device).to(device).eval()
        source, step = model_dir, run.last_step
    else:
        model, step = load_checkpoint_model(checkpoint_path, device)
        source = checkpoint_path
    if model.config.num_tokens != tokenizer.vocab_size:
        raise NoCheckpoint(
            f"the model in {source} has {model.config.num_tokens} tokens but run {run.id}'s tokenizer has "
            f"{tokenizer.vocab_size}; pick a checkpoint of this run"
        )
    graph = get_graph(config.diffusion.graph_type, tokenizer.vocab_size)
    noise_config = config.diffusion.noise
    noise = get_noise(
        noise_config.type, eps=noise_config.eps, sigma_min=noise_config.sigma_min, sigma_max=noise_config.sigma_max
    )
    logger.info("loaded run %d model from %s on %s", run.id, source, device)
    return _Artifacts(model, tokenizer, graph, noise, config, device, step)


def _draw(
    artifacts: _Artifacts,
    num: int,
    length: int,
    steps: int | None,
    predictor: str | None,
    seed: int,
    template: Any,
    progress: ProgressCallback | None,
    cancel: CancelCheck | None,
) -> torch.Tensor:
    """Return sampled tokens, int64 ``(num, length)`` on the CPU."""
    import torch

    from sedd.sampling import SamplingCancelled, model_score_fn, sample

    settings = artifacts.config.diffusion.sampling
    generator = torch.Generator(device=artifacts.device).manual_seed(seed)
    try:
        tokens = sample(
            model_score_fn(artifacts.model), artifacts.graph, artifacts.noise,
            batch_size=num, length=length, steps=steps or settings.steps, predictor=predictor or settings.predictor,
            eps=settings.eps, denoise=settings.denoise, generator=generator, device=artifacts.device,
            template=template, progress=progress, cancel=cancel,
        )  # fmt: skip
    except SamplingCancelled as error:
        raise GenerationCancelled(f"generation {error}; nothing was saved") from error
    except ValueError as error:
        raise WorkbenchError(f"sampling failed: {error}") from error
    return tokens.cpu()


def _build_template(artifacts: _Artifacts, parts: Sequence[str | int]) -> Any:
    from sedd.infill import InfillTemplate

    _check_encodable(artifacts.tokenizer, [part for part in parts if isinstance(part, str)])
    segments: list[list[int] | int] = [
        part if isinstance(part, int) else list(artifacts.tokenizer.encode(part)) for part in parts
    ]
    try:
        return InfillTemplate.from_spans(segments)
    except ValueError as error:
        raise InvalidConfig(f"invalid infill prompt: {error}") from error


def _check_encodable(tokenizer: Any, texts: Sequence[str]) -> None:
    """Raise InvalidConfig naming the prompt characters that ``tokenizer`` would encode as unknown."""
    unknown = sorted({character for text in texts for character in tokenizer.unknown_characters(text)})
    if unknown:
        listed = ", ".join(f"{character!r} (U+{ord(character):04X})" for character in unknown)
        raise InvalidConfig(
            f"the prompt contains characters that the run's {tokenizer.name} tokenizer cannot encode: {listed}; "
            "its vocabulary is the characters of the training text, so remove or replace these"
        )


def _segments(tokenizer: Any, ids: list[int], generated: list[bool]) -> GeneratedText:
    """Decode runs of consecutive fixed or generated positions separately."""
    segments = []
    start = 0
    for end in range(1, len(ids) + 1):
        if end == len(ids) or generated[end] != generated[start]:
            segments.append(Segment(tokenizer.decode(ids[start:end]), bool(generated[start])))
            start = end
    return GeneratedText(tuple(segment for segment in segments if segment.text))
