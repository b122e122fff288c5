"""gen/ is exactly what `make gen` makes from proto/: a proto change without `make gen` fails here."""

from __future__ import annotations

from pathlib import Path

from tools import gen

GEN = Path(gen.ROOT) / "gen"


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_gen_matches_the_protos(tmp_path: Path) -> None:
    gen.generate(tmp_path / "gen")

    fresh, committed = _files(tmp_path / "gen"), _files(GEN)

    assert sorted(fresh) == sorted(committed), "files differ; run `make gen`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"out of date with proto/: {stale}; run `make gen`"
