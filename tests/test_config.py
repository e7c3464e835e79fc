"""Experiment config schema: loading, overrides, every kind of bad input, shipped configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedd.config import (
    ConfigError,
    ExperimentConfig,
    config_to_dict,
    config_to_yaml,
    load_config,
    validate_dict,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SHIPPED = sorted(CONFIGS.glob("*.yaml"))

MINIMAL = "exp_id: demo\n"


def _error(text: str, overrides: list[str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(text, overrides or [])
    return caught.value


def test_defaults_fill_missing_sections():
    config = load_config(MINIMAL)
    assert config.exp_id == "demo"
    assert config.training.lr == 3e-4
    assert config.training.betas == (0.9, 0.999)
    assert config.data.hf_splits == {"train": "train", "validation": "validation", "test": "test"}
    assert config.diffusion.noise.type == "loglinear"


def test_exponent_float_without_dot():
    config = load_config("exp_id: demo\ntraining:\n  lr: 1e-4\n  weight_decay: 5E-2\n")
    assert config.training.lr == 1e-4
    assert config.training.weight_decay == 0.05


def test_integral_float_accepted_for_int():
    config = load_config("exp_id: demo\ntraining:\n  steps: 1e4\n")
    assert config.training.steps == 10000
    assert isinstance(config.training.steps, int)


def test_int_accepted_for_float():
    config = load_config("exp_id: demo\ntraining:\n  lr: 1\n")
    assert config.training.lr == 1.0
    assert isinstance(config.training.lr, float)


def test_empty_section_is_defaults():
    config = load_config("exp_id: demo\ntraining:\n")
    assert config.training == ExperimentConfig(exp_id="x").training


def test_overrides_parse_yaml_scalars():
    config = load_config(
        MINIMAL,
        [
            "training.lr=1e-4",
            "training.betas=[0.9, 0.95]",
            "gpu=[0, 1]",
            "training.max_minutes=2.5",
            "data.max_bytes=null",
            "notes=two words",
        ],
    )
    assert config.training.lr == 1e-4
    assert config.training.betas == (0.9, 0.95)
    assert config.gpu == [0, 1]
    assert config.training.max_minutes == 2.5
    assert config.data.max_bytes is None
    assert config.notes == "two words"


def test_override_creates_missing_section():
    config = load_config(MINIMAL, ["diffusion.noise.type=geometric"])
    assert config.diffusion.noise.type == "geometric"


def test_unknown_key_suggests_alias():
    error = _error("exp_id: demo\ntraining:\n  lerning_rate: 1.0e-4\n")
    assert error.path == "training.lerning_rate"
    assert error.line == 3
    assert "unknown key 'training.lerning_rate'; did you mean 'training.lr'?" in str(error)


def test_unknown_key_suggests_close_spelling():
    error = _error("exp_id: demo\nmodel:\n  hiden_size: 64\n")
    assert "did you mean 'model.hidden_size'?" in str(error)


def test_unknown_key_suggests_other_section():
    error = _error("exp_id: demo\nwarmup: 10\n")
    assert error.path == "warmup"
    assert "did you mean 'training.warmup'?" in str(error)


def test_unknown_key_without_match_lists_keys():
    error = _error("exp_id: demo\ndiffusion:\n  zzz: 1\n")
    assert "valid keys here are graph_type, noise, time_eps, antithetic, sampling" in str(error)


def test_wrong_type_names_value_and_type():
    error = _error("exp_id: demo\ntraining:\n  steps: many\n")
    assert error.path == "training.steps"
    assert error.line == 3
    assert "expected an integer, got string 'many'" in str(error)


def test_bool_is_not_an_integer():
    error = _error("exp_id: demo\ntraining:\n  accum: true\n")
    assert "expected an integer, got boolean True" in str(error)


def test_fractional_float_is_not_an_integer():
    error = _error("exp_id: demo\ntraining:\n  steps: 10.5\n")
    assert "expected an integer, got number 10.5" in str(error)


def test_nan_is_not_a_number():
    error = _error("exp_id: demo\ntraining:\n  lr: .nan\n")
    assert error.path == "training.lr"
    assert "expected a number" in str(error)


def test_section_must_be_mapping():
    error = _error("exp_id: demo\ntraining: 5\n")
    assert error.path == "training"
    assert "expected a section (a mapping of keys), got integer 5" in str(error)


def test_out_of_range_states_bound():
    error = _error("exp_id: demo\ntraining:\n  seed: 1\n  lr: -0.5\n")
    assert error.path == "training.lr"
    assert error.line == 4
    assert "-0.5 is out of range; expected a value > 0" in str(error)


def test_out_of_range_upper_bound():
    error = _error("exp_id: demo\ntraining:\n  ema: 1.0\n")
    assert "1.0 is out of range; expected a value < 1" in str(error)


def test_bad_enum_lists_choices():
    error = _error("exp_id: demo\ndiffusion:\n  graph_type: absorb\n")
    assert error.path == "diffusion.graph_type"
    assert error.line == 3
    assert "expected one of 'absorbing', 'uniform', got string 'absorb'" in str(error)


def test_bad_gpu_value():
    error = _error("exp_id: demo\ngpu: cuda\n")
    assert "expected one of 'cpu', 'auto' or an integer or a list of integers" in str(error)


def test_list_item_path_and_line():
    error = _error("exp_id: demo\ngpu:\n  - 0\n  - one\n")
    assert error.path == "gpu[1]"
    assert error.line == 4


def test_bad_exp_id_pattern():
    error = _error("exp_id: two words\n")
    assert error.path == "exp_id"
    assert "'two words' is invalid" in str(error)


def test_missing_exp_id():
    error = _error("training:\n  lr: 1.0e-3\n")
    assert error.path == "exp_id"
    assert "missing required key" in str(error)


def test_tuple_length_checked():
    error = _error("exp_id: demo\ntraining:\n  betas: [0.9]\n")
    assert error.path == "training.betas"
    assert "expected a list of 2 numbers" in str(error)


def test_several_problems_in_line_order():
    error = _error("exp_id: demo\ntraining:\n  lr: 0\n  steps: x\nmodel:\n  n_blockz: 2\n")
    assert [e.path for e in error.errors] == ["training.lr", "training.steps", "model.n_blockz"]
    assert [e.line for e in error.errors] == [3, 4, 6]
    assert error.line == 3
    assert str(error).startswith("3 problems in the config:")


@pytest.mark.parametrize("override", ["training.lr", "=1", "training..lr=1", "1x=2", "training.lr 3"])
def test_bad_override_syntax(override):
    error = _error(MINIMAL, [override])
    assert f"invalid override {override!r}; expected key.path=value" in str(error)


def test_override_value_invalid_yaml():
    error = _error(MINIMAL, ["training.betas=[0.9"])
    assert error.path == "training.betas"
    assert "invalid override value '[0.9'" in str(error)


def test_override_into_a_value():
    error = _error("exp_id: demo\ntraining:\n  lr: 1.0e-3\n", ["training.lr.peak=1"])
    assert error.path == "training.lr"
    assert "'training.lr' is a value, not a section" in str(error)


def test_override_error_has_no_line():
    error = _error("exp_id: demo\ntraining:\n  lr: 1.0e-3\n", ["training.lr=-1"])
    assert error.path == "training.lr"
    assert error.line is None


def test_override_error_names_override():
    error = _error("exp_id: demo\ntraining:\n  lr: 1.0e-3\n", ["training.lr=fast"])
    assert error.override == "training.lr=fast"
    assert error.from_overrides
    assert str(error) == "--set training.lr=fast: training.lr: expected a number, got string 'fast'"


def test_override_of_section_names_override():
    error = _error(MINIMAL, ["training.lr=1e-3", "training={lr: fast}"])
    assert str(error) == "--set training={lr: fast}: training.lr: expected a number, got string 'fast'"


def test_override_and_text_errors_mixed():
    error = _error("exp_id: demo\ntraining:\n  steps: 0\n", ["training.lr=fast"])
    assert [e.override for e in error.errors] == [None, "training.lr=fast"]
    assert not error.from_overrides
    assert str(error) == (
        "2 problems in the config:\n"
        "  - line 3: training.steps: 0 is out of range; expected a value >= 1\n"
        "  - --set training.lr=fast: training.lr: expected a number, got string 'fast'"
    )


def test_text_error_beside_override_keeps_line():
    error = _error("exp_id: demo\ntraining:\n  steps: 0\n", ["training.lr=1e-4"])
    assert error.override is None
    assert str(error) == "line 3: training.steps: 0 is out of range; expected a value >= 1"


def test_override_unknown_key_suggestion():
    error = _error(MINIMAL, ["training.learning_rate=1e-3"])
    assert "did you mean 'training.lr'?" in str(error)


def test_duplicate_key_rejected():
    error = _error("exp_id: demo\ntraining:\n  lr: 1.0e-3\n  lr: 2.0e-3\n")
    assert error.path == "training.lr"
    assert error.line == 4
    assert "also set on line 3" in str(error)


def test_invalid_yaml_reports_line():
    error = _error("exp_id: demo\ntraining:\n  lr: [1,\n  steps: 3\nx: : y\n")
    assert error.line is not None
    assert "invalid YAML" in str(error)


def test_top_level_not_mapping():
    error = _error("- a\n- b\n")
    assert "the config must be a mapping" in str(error)


def test_heads_must_divide_hidden():
    error = _error("exp_id: demo\nmodel:\n  hidden_size: 100\n  n_heads: 3\n")
    assert error.path == "model.n_heads"
    assert error.line == 4
    assert "3 does not divide model.hidden_size=100" in str(error)


def test_odd_head_size_rejected():
    error = _error("exp_id: demo\nmodel:\n  hidden_size: 96\n  n_heads: 32\n")
    assert "odd head size 3" in str(error)


def test_scale_by_sigma_with_uniform_rejected():
    error = _error("exp_id: demo\ndiffusion:\n  graph_type: uniform\n")
    assert error.path == "model.scale_by_sigma"
    assert "set model.scale_by_sigma: false" in str(error)


def test_batch_divisible_by_accum():
    error = _error("exp_id: demo\ntraining:\n  batch_size: 10\n  accum: 4\n")
    assert error.path == "training.batch_size"
    assert error.line == 3
    assert "10 is not divisible by training.accum=4" in str(error)


def test_geometric_sigma_order():
    error = _error(
        "exp_id: demo\ndiffusion:\n  noise:\n    type: geometric\n    sigma_min: 30.0\n"
    )
    assert error.path == "diffusion.noise.sigma_min"
    assert "not below sigma_max=20.0" in str(error)


def test_text_corpus_needs_files():
    error = _error("exp_id: demo\ndata:\n  corpus: text\n")
    assert error.path == "data.train_files"
    assert error.line == 2  # the section, because the key itself is absent


def test_hf_corpus_needs_name():
    error = _error("exp_id: demo\ndata:\n  corpus: hf\n")
    assert error.path == "data.hf_name"


def test_fractions_leave_training_text():
    error = _error("exp_id: demo\ndata:\n  validation_fraction: 0.5\n  test_fraction: 0.5\n")
    assert "leaves no training text" in str(error)


def test_duplicate_gpu_rejected():
    error = _error("exp_id: demo\ngpu: [1, 1]\n")
    assert "lists a GPU twice" in str(error)


def test_beta_range():
    error = _error("exp_id: demo\ntraining:\n  betas: [0.9, 1.5]\n")
    assert error.path == "training.betas[1]"
    assert error.line == 3


def test_config_error_is_value_error():
    assert issubclass(ConfigError, ValueError)


def test_yaml_round_trip():
    config = load_config(MINIMAL, ["training.lr=1e-4", "gpu=[0, 1]", "tags=[a, b]"])
    assert load_config(config_to_yaml(config)) == config


def test_dict_round_trip():
    config = load_config(MINIMAL, ["training.betas=[0.8, 0.9]"])
    data = config_to_dict(config)
    assert data["training"]["betas"] == [0.8, 0.9]
    assert validate_dict(data) == config


def test_file_relative_paths(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "run.yaml"
    path.write_text(
        "exp_id: demo\ndata:\n  corpus: text\n  train_files: ../corpus/*.txt\n"
        "  validation_files: /abs/valid.txt\n"
    )
    config = load_config(path)
    assert config.data.train_files == str(tmp_path / "corpus" / "*.txt")
    assert config.data.validation_files == "/abs/valid.txt"


def test_text_paths_stay_relative():
    config = load_config("exp_id: demo\ndata:\n  corpus: text\n  train_files: corpus/a.txt\n")
    assert config.data.train_files == "corpus/a.txt"


def test_path_string_is_read(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("exp_id: from_file\n")
    assert load_config(str(path)).exp_id == "from_file"


def test_missing_file_error(tmp_path):
    error = _error(str(tmp_path / "absent.yaml"))
    assert "config file not found" in str(error)


def test_shipped_configs_present():
    names = {path.name for path in SHIPPED}
    assert {"quickstart.yaml", "absorbing.yaml", "uniform.yaml", "medium.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_shipped_config_valid(path):
    config = load_config(path)
    assert config.exp_id
    assert load_config(config_to_yaml(config)) == config


def test_paper_configs_match_paper():
    small = load_config(CONFIGS / "absorbing.yaml")
    uniform = load_config(CONFIGS / "uniform.yaml")
    medium = load_config(CONFIGS / "medium.yaml")
    assert (small.model.hidden_size, small.model.n_blocks, small.model.n_heads) == (768, 12, 12)
    assert (medium.model.hidden_size, medium.model.n_blocks, medium.model.n_heads) == (1024, 24, 16)
    assert small.diffusion.noise.type == "loglinear"
    assert uniform.diffusion.noise.type == "geometric"
    assert uniform.diffusion.graph_type == "uniform"
    for config in (small, uniform, medium):
        assert config.data.seq_len == 1024
        assert config.data.tokenizer == "gpt2"
        assert config.training.batch_size == 512
        assert config.training.lr == 3e-4
        assert config.training.warmup == 2500
        assert config.training.ema == 0.9999
        assert config.model.cond_dim == 128


def test_file_relative_path_list(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("exp_id: demo\ndata:\n  corpus: text\n  train_files: [a.txt, sub/b.txt]\n")
    config = load_config(path)
    assert config.data.train_files == [str(tmp_path / "a.txt"), str(tmp_path / "sub" / "b.txt")]


def test_bpe_vocab_minimum():
    error = _error("exp_id: demo\ndata:\n  tokenizer: bpe\n  vocab_size: 100\n")
    assert error.path == "data.vocab_size"
    assert "use at least 257" in str(error)


def test_hf_split_may_be_null():
    config = load_config("exp_id: demo\ndata:\n  hf_splits: {train: train, test: null}\n")
    assert config.data.hf_splits == {"train": "train", "test": None}


@pytest.mark.parametrize(("name", "nearest"), [("chars", "char"), ("Char", "char"), ("bep", "bpe"), ("gpt-2", "gpt2")])
def test_tokenizer_typo_suggests_builtin(name, nearest):
    error = _error(MINIMAL, [f"data.tokenizer={name}"])
    assert error.path == "data.tokenizer"
    assert str(error) == (
        f"--set data.tokenizer={name}: data.tokenizer: unknown tokenizer {name!r}; did you mean {nearest!r}? "
        "Use char, bpe, gpt2, a Hugging Face tokenizer name such as 'org/name', or a local folder"
    )


@pytest.mark.parametrize("name", ["char", "gpt2-medium", "distilgpt2", "bert-base-uncased", "openai-community/gpt2", "org/chars"])
def test_tokenizer_names_accepted(name):
    assert load_config(MINIMAL, [f"data.tokenizer={name}"]).data.tokenizer == name


def test_tokenizer_local_folder_accepted(tmp_path, monkeypatch):
    (tmp_path / "chars").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_config(MINIMAL, ["data.tokenizer=chars"]).data.tokenizer == "chars"
