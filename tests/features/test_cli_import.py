"""`fpload features show` and `fpload features import` (the catalog round trip), end to end."""

import json

import pytest
from PIL import Image

from fpload.catalog import open_catalog
from fpload.cli import main
from fpload.pack import PackConfig
from fpload.errors import UsageError
from fpload.features import open_features
from fpload.pack import pack_version


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_show_prints_a_summary_and_plots(same_size, tmp_path, capsys):
    code, out, _ = run(capsys, "features", "show", same_size.path, "--json")
    assert code == 0
    s = json.loads(out)
    assert s["samples"] == 24 and s["arrays"]["orientation"]["shape"] == [24, 2, 3, 3]
    assert s["codec"] == {"name": "zstd", "level": 5} and 0 <= s["quality"]["min"] <= s["quality"]["max"] <= 100
    png = tmp_path / "f.png"
    code, out, _ = run(capsys, "features", "show", same_size.path.parent, "--plot", png)
    assert code == 0 and "orientation v1" in out and "not NFIQ 2" in out
    with Image.open(png) as im:
        assert im.size[0] > 800 and im.size[1] > 500
    code, _, err = run(capsys, "features", "show", tmp_path / "nowhere")
    assert code == 1 and "no published dataset version" in err and "Traceback" not in err


def test_import_writes_quality_back_as_a_revision(tmp_path, captures, capsys):
    cat_path = tmp_path / "cat.duckdb"
    with open_catalog(cat_path) as cat:
        cat.ingest(captures)
        res = pack_version(cat, out=tmp_path / "v", name="all", where="consent",
                           config=PackConfig(encoding="raw"))
    quality = dict(zip(open_features(res.path).sample_ids.tolist(), open_features(res.path).load("quality")))
    code, out, _ = run(capsys, "features", "import", res.path, "--catalog", cat_path, "--json")
    assert code == 0
    rep = json.loads(out)
    assert rep["revision"] == 2 and rep["changed"] == 40 and rep["column"] == "quality"
    with open_catalog(cat_path) as cat:
        msg = cat.revision(2).message
        assert '"extractor": "quality"' in msg and '"extractor_version": 1' in msg and res.version_id in msg
        rows = cat.query("consent", columns=["sample_id", "quality"]).to_pylist()
        assert all(abs(r["quality"] - float(quality[r["sample_id"]])) < 1e-3 for r in rows)
        threshold = sorted(r["quality"] for r in rows)[20]
        sel = pack_version(cat, out=tmp_path / "v", name="good", where=f"consent AND quality >= {threshold}",
                           config=PackConfig(encoding="raw"), revision=2)
        assert sel.samples == 20
        # old selections stay reproducible: revision 1 still has the ingest-time quality
        assert cat.query("consent", revision=1, columns=["quality"]).column("quality").to_pylist() != \
            [r["quality"] for r in rows]
        with pytest.raises(UsageError, match="only numeric scalar features"):
            from fpload.features import import_to_catalog

            import_to_catalog(res.path, cat, feature="thumbnail")
    code, out, _ = run(capsys, "features", "import", res.path, "--catalog", cat_path)
    assert code == 0 and "nothing changed" in out
    code, _, err = run(capsys, "features", "import", res.path, "--catalog", cat_path, "--column", "ppi")
    assert code == 2 and "field 'ppi' cannot be changed" in err
