"""Experiment services: create, clone, update, delete, list and show."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

from workbench.errors import ExperimentExists, ExperimentNotFound, InvalidConfig, RunActive
from workbench.services.base import ServiceBase
from workbench.services.configs import canonical_text, load_validated
from workbench.store import ACTIVE_STATUSES, Experiment, ExperimentSummary, Run

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExperimentDetails:
    """An experiment with its runs, oldest first, and the ``exp_id`` of the one it was cloned from."""

    experiment: Experiment
    runs: list[Run]
    parent_exp_id: str | None


class ExperimentServices(ServiceBase):
    """Operations on experiments; mixed into ``Workbench``."""

    def create_experiment(
        self,
        exp_id: str | None = None,
        *,
        config_path: str | os.PathLike[str] | None = None,
        config_text: str | None = None,
        overrides: Sequence[str] = (),
    ) -> Experiment:
        """Validate a config and store it as a new experiment.

        ``exp_id``, when given, replaces the config's own. Nothing is written unless the
        config is valid and the id is free.

        Raises:
            InvalidConfig: the config or an override is invalid.
            ExperimentExists: the id is taken.
        """
        config = load_validated(path=config_path, text=config_text, overrides=overrides, exp_id=exp_id)
        return self.store.create_experiment(
            config.exp_id, canonical_text(config), notes=config.notes, tags=list(config.tags)
        )

    def clone_experiment(self, exp_id: str, new_exp_id: str, overrides: Sequence[str] = ()) -> Experiment:
        """Copy an experiment's config under a new id and record the original as its parent."""
        source = self.store.get_experiment(exp_id)
        if self._exists(new_exp_id):
            raise ExperimentExists(new_exp_id)
        config = load_validated(text=source.config_text, overrides=overrides, exp_id=new_exp_id)
        return self.store.create_experiment(
            new_exp_id, canonical_text(config), notes=config.notes, tags=list(config.tags), parent_id=source.id
        )

    def update_config(
        self,
        exp_id: str,
        config_text: str | None = None,
        *,
        config_path: str | os.PathLike[str] | None = None,
        overrides: Sequence[str] = (),
    ) -> Experiment:
        """Replace an experiment's config, or apply overrides to it, after validation.

        Without ``config_path`` and ``config_text`` the overrides apply to the current config.
        The ``exp_id`` must not change. Runs keep the config they were launched with, so this
        affects later runs only.
        """
        current = self.store.get_experiment(exp_id)
        if config_path is None and config_text is None:
            config_text = current.config_text
        config = load_validated(path=config_path, text=config_text, overrides=overrides)
        if config.exp_id != exp_id:
            raise InvalidConfig(
                f"the config's exp_id {config.exp_id!r} differs from experiment '{exp_id}'; keep "
                f"exp_id: {exp_id}, or use `workbench clone {exp_id} {config.exp_id}` for a new experiment",
                key_path="exp_id",
            )
        return self.store.update_experiment(
            exp_id, config_text=canonical_text(config), notes=config.notes, tags=list(config.tags)
        )

    def delete_experiment(self, exp_id: str) -> None:
        """Delete an experiment and its run records; run folders on disk are kept.

        Raises:
            RunActive: a run of the experiment is queued or running.
        """
        self.reconcile()
        active = self.store.list_runs(exp_id, statuses=ACTIVE_STATUSES)
        if active:
            ids = ", ".join(str(run.id) for run in active)
            raise RunActive(f"experiment '{exp_id}' has active runs ({ids}); stop them first with `workbench stop RUN`")
        self.store.delete_experiment(exp_id)

    def list_experiments(self) -> list[ExperimentSummary]:
        """Reconcile the runs, then return every experiment with its latest run."""
        self.reconcile()
        return self.store.experiment_summaries()

    def show_experiment(self, exp_id: str) -> ExperimentDetails:
        """Reconcile the runs, then return an experiment, its runs and its parent's id."""
        self.reconcile()
        experiment = self.store.get_experiment(exp_id)
        parent = experiment.parent.exp_id if experiment.parent is not None else None
        # list_runs loads each run's experiment too, which the runs table reads after the
        # session that loaded them has closed.
        return ExperimentDetails(experiment, self.store.list_runs(exp_id), parent)

    def _exists(self, exp_id: str) -> bool:
        try:
            self.store.get_experiment(exp_id)
        except ExperimentNotFound:
            return False
        return True
