"""Real data end to end (issue 7), image half: the few-shot image probe of bench/e2e_shared.py on
../shared/data/images (the text half is tests/test_e2e_shared_text.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

from _bench import e2e_summary


@pytest.mark.shared
@pytest.mark.slow
def test_real_image_data_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    import aigc

    s = e2e_summary(tmp_path / "e2e", "--skip-text")
    assert "text" not in s
    images = s["images"]
    # the few-shot image probe: cross-validated over 100 real files, per generator, with its bundle and report
    assert images["n"] == 100
    assert set(images["cv_auroc_per_generator"]) == {"gan", "diffusion1", "diffusion2", "diffusion3", "diffusion4"}
    assert 0.0 <= images["cv_auroc_ci95"][0] <= images["cv_auroc"] <= images["cv_auroc_ci95"][1] <= 1.0
    assert Path(images["report"]).is_file()
    assert aigc.load(images["bundle"]).modality == "image"
