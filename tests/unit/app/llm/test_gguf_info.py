"""Reading a GGUF header: what the model list shows, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.llm.base import ModelError
from app.llm.gguf_info import GgufError, read_gguf_info, shard_index

from .conftest import GgufMaker


def test_header_fields_of_a_small_model(make_gguf: GgufMaker) -> None:
    path = make_gguf(layers=3, embd=64, heads=4, kv_heads=2, ctx=2048)
    info = read_gguf_info(path)
    assert info.name == "Tiny Test Model"
    assert info.architecture == "llama"
    assert info.quantization == "F32"
    assert info.block_count == 3
    assert info.context_length == 2048
    assert info.embedding_length == 64
    assert (info.head_count, info.head_count_kv, info.head_dim_k) == (4, 2, 16)
    assert info.vocab_size == 100
    assert info.has_chat_template and info.chat_template == "{{ messages[0]['content'] }}"
    assert info.file_size == path.stat().st_size


def test_tensor_bytes_are_split_into_layers_and_the_rest(make_gguf: GgufMaker) -> None:
    info = read_gguf_info(make_gguf(layers=2, embd=64, heads=4, kv_heads=2))
    layer = (64 * 64 + 32 * 64 + 64) * 4  # q, k, norm in f32
    assert info.layer_bytes == (layer, layer)
    assert info.other_bytes == (100 * 64 * 2 + 64) * 4  # embeddings, output head, final norm
    assert info.output_bytes == (100 * 64 + 64) * 4
    # All the bytes of the file but its header are weights.
    assert 0 < info.file_size - info.weight_bytes < 8192


def test_a_tied_output_head_counts_the_embeddings_for_the_gpu(make_gguf: GgufMaker) -> None:
    info = read_gguf_info(make_gguf(tied_output=True))
    assert info.output_bytes == (100 * 64 + 64) * 4


def test_without_a_name_or_template_or_file_type(make_gguf: GgufMaker) -> None:
    info = read_gguf_info(
        make_gguf("my-model.Q8.gguf", name=None, chat_template=None, file_type=None)
    )
    assert info.name == "my-model.Q8"
    assert not info.has_chat_template
    assert info.quantization == "F32"  # from the tensors that hold most bytes


def test_a_projector_file_is_recognised(make_gguf: GgufMaker) -> None:
    assert read_gguf_info(make_gguf("mmproj-model-f16.gguf")).is_projector
    assert read_gguf_info(make_gguf("x.gguf", general_type="mmproj")).is_projector
    assert not read_gguf_info(make_gguf("model.gguf")).is_projector


def test_a_text_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.gguf"
    bad.write_text("this is not a model, just some notes about one" * 3)
    with pytest.raises(ModelError, match=r"notes\.gguf.*GGUF signature"):
        read_gguf_info(bad)


def test_a_truncated_file_is_refused(make_gguf: GgufMaker, tmp_path: Path) -> None:
    good = make_gguf(layers=2)
    data = good.read_bytes()
    for cut in (30, 200, len(data) - 100):
        cut_file = tmp_path / f"cut{cut}.gguf"
        cut_file.write_bytes(data[:cut])
        with pytest.raises(GgufError, match="truncated") as err:
            read_gguf_info(cut_file)
        assert err.value.path == cut_file


def test_garbage_after_the_signature_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.gguf"
    bad.write_bytes(b"GGUF" + bytes([3, 0, 0, 0]) + b"\xff" * 200)
    with pytest.raises(GgufError, match=r"garbage\.gguf"):
        read_gguf_info(bad)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(GgufError, match="does not exist"):
        read_gguf_info(tmp_path / "nope.gguf")
    (tmp_path / "dir.gguf").mkdir()
    with pytest.raises(GgufError):
        read_gguf_info(tmp_path / "dir.gguf")


def test_shard_names() -> None:
    assert shard_index(Path("Qwen-72B-Q4_K_M-00002-of-00003.gguf")) == (2, 3)
    assert shard_index(Path("model.gguf")) is None


@pytest.mark.parametrize(
    ("file_name", "shown"),
    [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct"),
        ("Qwen3-30B-A3B-Q4_K_M.gguf", "Qwen3-30B-A3B"),
        ("gpt-oss-20b-mxfp4.gguf", "gpt-oss-20b"),
        ("Meta-Llama-3.1-8B-Instruct-IQ3_XXS.gguf", "Meta-Llama-3.1-8B-Instruct"),
        ("big-model.Q4_0-00001-of-00002.gguf", "big-model"),
        ("model.gguf", "Smollm2 135M 8k Lc100K Mix1 Ep2"),  # a generic file name: the header's
    ],
)
def test_a_model_is_shown_by_the_name_its_file_gives(
    tmp_path: Path, file_name: str, shown: str
) -> None:
    from .conftest import write_gguf

    path = write_gguf(tmp_path / file_name, name="Smollm2 135M 8k Lc100K Mix1 Ep2")
    info = read_gguf_info(path)
    assert info.display_name == shown
    assert info.name == "Smollm2 135M 8k Lc100K Mix1 Ep2"  # the header's, as `librarian models`
