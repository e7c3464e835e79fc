"""``quickstart``: create the store, train the quickstart experiment, sample and infill from it.

The quickstart config is ``configs/quickstart.yaml`` at the repository root. The package reaches
it through the symbolic link ``workbench/configs/quickstart.yaml``, which resolves in a source
checkout and in an editable install. Building a wheel copies the file behind the link into the
package, because ``*.yaml`` is package data, so an installed wheel contains it too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import ExperimentNotFound, WorkbenchError
from workbench.services.experiments import ExperimentServices
from workbench.services.generation import GeneratedText, GenerationServices
from workbench.services.runs import RunProgress, RunServices
from workbench.store import Run, RunStatus

logger = logging.getLogger(__name__)

QUICKSTART_EXP_ID = "quickstart"
QUICKSTART_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
# The default corpus is Python source, so the example leaves a function name, its parameters
# and its body to the model.
INFILL_EXAMPLE = "def [MASK:12](self, [MASK:8]):\n    return [MASK:16]\n"


@dataclass(frozen=True)
class QuickstartResult:
    """The finished quickstart run, its last validation figures and generated examples.

    ``val_loss`` is in nats per token and ``val_bpt`` in bits per token.
    """

    run: Run
    val_loss: float | None
    val_bpt: float | None
    samples: list[GeneratedText]
    infill_prompt: str
    infill: list[GeneratedText]


def quickstart_config_path() -> Path:
    """Return the quickstart config file; raise WorkbenchError if the installation lacks it."""
    path = QUICKSTART_CONFIG.resolve()
    if not path.is_file():
        raise WorkbenchError(
            f"the quickstart config {QUICKSTART_CONFIG} is missing (it should lead to configs/quickstart.yaml); "
            "reinstall the package, or create an experiment from your own config with `workbench new`"
        )
    return path


class QuickstartServices(ExperimentServices, RunServices, GenerationServices):
    """The quickstart steps; mixed into ``Workbench``."""

    def start_quickstart(self, overrides: Sequence[str] = (), gpu: str | None = None) -> Run:
        """Register the quickstart experiment if needed (overrides update it) and launch a run."""
        try:
            self.store.get_experiment(QUICKSTART_EXP_ID)
        except ExperimentNotFound:
            self.create_experiment(QUICKSTART_EXP_ID, config_path=quickstart_config_path(), overrides=overrides)
        else:
            if overrides:
                self.update_config(QUICKSTART_EXP_ID, overrides=overrides)
        return self.launch(QUICKSTART_EXP_ID, gpu=gpu)

    def finish_quickstart(self, run_id: int, *, num_samples: int = 3, seed: int = 0) -> QuickstartResult:
        """Collect the validation figures and generate samples and an infilling from a run.

        Raises:
            WorkbenchError: the run did not complete or stop with a model to sample from.
        """
        run = self.store.get_run(run_id)
        if run.status not in (RunStatus.COMPLETED, RunStatus.STOPPED):
            raise WorkbenchError(
                f"quickstart run {run_id} ended {run.status.value}: {run.message or 'no message'}; "
                f"see `workbench logs {run_id}`"
            )
        last = self.store.last_metrics(run_id)
        samples = self.sample(run_id, num=num_samples, seed=seed, save=True)
        infill = self.infill(run_id, template=INFILL_EXAMPLE, seed=seed, save=True)
        return QuickstartResult(
            run=run,
            val_loss=last["val_loss"][1] if "val_loss" in last else None,
            val_bpt=last["val_bpt"][1] if "val_bpt" in last else None,
            samples=samples,
            infill_prompt=INFILL_EXAMPLE,
            infill=infill,
        )

    def run_quickstart(
        self,
        overrides: Sequence[str] = (),
        *,
        gpu: str | None = None,
        on_progress: Callable[[RunProgress], None] | None = None,
    ) -> QuickstartResult:
        """Start the quickstart run, report its progress until it ends, then finish it."""
        run = self.start_quickstart(overrides, gpu)
        for progress in self.follow_run(run.id):
            if on_progress is not None:
                on_progress(progress)
        return self.finish_quickstart(run.id)
