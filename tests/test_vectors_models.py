import pytest
import torch
from safetensors.torch import save_file

from prosv.generation import Steering, generate
from prosv.interventions import LoReFT, SteeringVectors
from prosv.models import ModelNotAvailable, load_model, resolve_model
from prosv.vectors import config_hash, load_vectors, save_vectors


def test_vector_round_trip_keeps_tensors_metadata_and_behaviour(tiny_model, tokenizer, tmp_path):
    g = torch.Generator().manual_seed(0)
    module = SteeringVectors(torch.tensor([12.0, -3.0]), torch.randn(2, tiny_model.config.hidden_size, generator=g))
    hp = {"c_alpha": 4, "eta_alpha": 10.0}
    path = save_vectors(
        tmp_path / "v.safetensors",
        module,
        model="org/tiny",
        model_revision="abc",
        layer=2,
        positions="p2+s2",
        loss="lang",
        hyperparameters=hp,
        concepts=["cats", "dogs"],
    )
    vf = load_vectors(path)
    assert vf.layer == 2 and vf.positions == "p2+s2" and vf.intervention == "sv" and vf.method == "sv"
    assert vf.metadata["model"] == "org/tiny" and vf.metadata["hyperparameters"] == hp
    assert vf.metadata["config_hash"] == config_hash(
        {
            "model": "org/tiny",
            "layer": 2,
            "positions": "p2+s2",
            "loss": "lang",
            "hyperparameters": {"eta_alpha": 10.0, "c_alpha": 4},
        }
    )
    assert vf.index_of("dogs") == 1
    for name, t in module.state_tensors().items():
        assert torch.equal(vf.module.state_tensors()[name], t)
    a = generate(tiny_model, tokenizer, ["Hi"], Steering(module, 2, "p2+s2", rows=[1]), max_new_tokens=6)
    b = generate(tiny_model, tokenizer, ["Hi"], Steering(vf.module, vf.layer, vf.positions, rows=[1]), max_new_tokens=6)
    assert a[0].token_ids == b[0].token_ids
    assert not list(tmp_path.glob(".*")), "no temporary file left behind"


def test_loreft_round_trip(tmp_path):
    module = LoReFT(2, 16, rank=2, seed=3)
    path = save_vectors(
        tmp_path / "r.safetensors",
        module,
        model="m",
        model_revision=None,
        layer=0,
        positions="p1+s1",
        loss="lang",
        hyperparameters={},
    )
    back = load_vectors(path).module
    for name, t in module.state_tensors().items():
        torch.testing.assert_close(back.state_tensors()[name], t)


def test_method_and_intervention_have_their_own_names_and_old_files_still_load(tmp_path):
    module = SteeringVectors(torch.tensor([2.0]), torch.ones(1, 8))
    new = load_vectors(
        save_vectors(
            tmp_path / "new.safetensors",
            module,
            model="m",
            layer=1,
            positions="all",
            loss="lang",
            hyperparameters={},
            method="fssv_lang",
        )
    )
    assert (new.intervention, new.method, new.metadata["format"]) == ("sv", "fssv_lang", "prosv-vectors/2")
    # format 1 called the kind `method` and the workflow's name `method_name`
    old = {
        "format": "prosv-vectors/1",
        "method": "sv",
        "method_name": "prosv_lang",
        "model": "m",
        "layer": "1",
        "positions": "p2+s2",
        "loss": "lang",
        "hyperparameters": "{}",
        "concepts": "[0]",
    }
    save_file(module.state_tensors(), str(tmp_path / "old.safetensors"), metadata=old)
    back = load_vectors(tmp_path / "old.safetensors")
    assert (back.intervention, back.method) == ("sv", "prosv_lang")
    torch.testing.assert_close(back.module.state_tensors()["v"], module.state_tensors()["v"])


def test_foreign_safetensors_file_is_rejected(tmp_path):
    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not a prosv vector file"):
        load_vectors(tmp_path / "other.safetensors")
    with pytest.raises(FileNotFoundError):
        load_vectors(tmp_path / "missing.safetensors")


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown model 'gpt-17'"):
        resolve_model("gpt-17")
    assert resolve_model("gemma-2-9b-it").location == "google/gemma-2-9b-it"


def test_offline_hub_model_fails_with_instructions(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelNotAvailable) as err:
        load_model("gemma-2-2b-it", device="cpu")
    msg = str(err.value)
    assert "gemma-2-2b-it" in msg and "google/gemma-2-2b-it" in msg and "local folder" in msg


def test_embedded_model_loads_from_converted_folder(embedded):
    model, tokenizer = embedded
    assert model.config.hidden_size == 576 and model.config.num_hidden_layers == 30
    from prosv.models import cpu_has_native_bf16

    assert model.dtype == (torch.bfloat16 if cpu_has_native_bf16() else torch.float32) and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert model.prosv_ref.source_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    out = generate(model, tokenizer, ["What is the capital of France?"], max_new_tokens=16)
    assert "Paris" in out[0].text


def test_cpu_dtype_policy(monkeypatch):
    from prosv.models import cpu_has_native_bf16, default_dtype, resolve_dtype

    assert default_dtype("cuda") == torch.bfloat16
    monkeypatch.setenv("PROSV_CPU_DTYPE", "float32")
    assert default_dtype("cpu") == torch.float32 and resolve_dtype("auto", "cpu") == torch.float32
    monkeypatch.delenv("PROSV_CPU_DTYPE")
    assert default_dtype("cpu") == (torch.bfloat16 if cpu_has_native_bf16() else torch.float32)
    with pytest.raises(ValueError, match="float8"):
        resolve_dtype("float8", "cpu")
