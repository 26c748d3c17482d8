"""The ONNX Runtime backend: export of the tiny run, same output as torch, clear errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from inference import NewsExtractor, RunDirectoryError
from inference.cli import main as inference_main
from inference.schema import Entity
from inference.windows import tokenize

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: the onnx backend is optional at run time")
pytest.importorskip("onnx", reason="onnx is not installed: torch.onnx.export needs it")

TEXT = "John Smith works for Acme Corp in Boston. Maria Lopez lives in Paris since Monday."


@pytest.fixture(scope="module")
def onnx_dir(tiny_run: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx")
    assert inference_main(["export-onnx", "--model", str(tiny_run), "--out", str(out), "--quantize", "int8"]) == 0
    return out


def test_export_writes_graphs_and_manifest(onnx_dir: Path):
    names = sorted(p.name for p in onnx_dir.iterdir())
    assert names == ["export.json", "ner.int8.onnx", "ner.onnx", "relations.int8.onnx", "relations.onnx"]


def test_bert_graphs_are_fused_and_int8_attention_quantized(onnx_dir: Path):
    import onnx

    for part in ("ner", "relations"):
        fp32 = {n.op_type for n in onnx.load(str(onnx_dir / f"{part}.onnx")).graph.node}
        int8 = {n.op_type for n in onnx.load(str(onnx_dir / f"{part}.int8.onnx")).graph.node}
        assert {"Attention", "SkipLayerNormalization"} <= fp32, part
        assert "QAttention" in int8 and "Attention" not in int8, part


def test_onnx_backend_gives_the_torch_entities_and_relations(tiny_run: Path, onnx_dir: Path):
    import torch

    torch_ex = NewsExtractor.from_pretrained(tiny_run, device="cpu")
    onnx_ex = NewsExtractor.from_pretrained(tiny_run, backend="onnx", onnx_dir=onnx_dir)
    tokens = tokenize(torch_ex.tagger.tokenizer, [TEXT])
    torch.testing.assert_close(onnx_ex.tagger.word_logits(tokens)[0], torch_ex.tagger.word_logits(tokens)[0], atol=1e-4, rtol=1e-4)
    ours, theirs = torch_ex.extract(TEXT), onnx_ex.extract(TEXT)
    assert [(e.start, e.end, e.label) for e in theirs.entities] == [(e.start, e.end, e.label) for e in ours.entities]
    assert [e.score for e in theirs.entities] == pytest.approx([e.score for e in ours.entities], abs=1e-4)
    # Relations among fixed entities, so the relation encoder is compared even if the tiny NER finds little.
    gold = [Entity("T1", 0, 10, "John Smith", "Peop", 1.0), Entity("T2", 21, 30, "Acme Corp", "Org", 1.0),
            Entity("T3", 34, 40, "Boston", "Loc", 1.0)]
    expected = torch_ex.relation_tagger.predict([TEXT], tokens, [gold])[0]
    got = onnx_ex.relation_tagger.predict([TEXT], tokens, [gold])[0]
    assert [(r.head, r.tail, r.label) for r in got] == [(r.head, r.tail, r.label) for r in expected]
    assert [r.score for r in got] == pytest.approx([r.score for r in expected], abs=1e-4)


def test_int8_backend_runs(tiny_run: Path, onnx_dir: Path):
    article = NewsExtractor.from_pretrained(tiny_run, backend="onnx-int8", onnx_dir=onnx_dir).extract(TEXT)
    assert all(TEXT[e.start : e.end] == e.text for e in article.entities)


def test_predict_command_takes_the_backend(tiny_run: Path, onnx_dir: Path, tmp_path: Path, capsys):
    article = tmp_path / "a.txt"
    article.write_text(TEXT, encoding="utf-8")
    assert inference_main(["predict", "--model", str(tiny_run), "--backend", "onnx", "--onnx-dir", str(onnx_dir), str(article)]) == 0
    assert '"entities"' in capsys.readouterr().out


def test_missing_or_stale_graphs_are_clear_errors(tiny_run: Path, onnx_dir: Path, tmp_path: Path):
    with pytest.raises(RunDirectoryError, match="export-onnx"):
        NewsExtractor.from_pretrained(tiny_run, backend="onnx", onnx_dir=tmp_path)
    stale = tmp_path / "stale"
    stale.mkdir()
    for p in onnx_dir.iterdir():
        (stale / p.name).write_bytes(p.read_bytes())
    manifest = stale / "export.json"
    manifest.write_text(manifest.read_text().replace('"weights_sha256": "', '"weights_sha256": "0'), encoding="utf-8")
    with pytest.raises(RunDirectoryError, match="other weights"):
        NewsExtractor.from_pretrained(tiny_run, backend="onnx", onnx_dir=stale)
    with pytest.raises(ValueError, match="backend must be one of"):
        NewsExtractor.from_pretrained(tiny_run, backend="tensorrt")
    with pytest.raises(ValueError, match="CPU only"):
        NewsExtractor.from_pretrained(tiny_run, backend="onnx", device="cuda")
