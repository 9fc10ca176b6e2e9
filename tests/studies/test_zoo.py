"""`--adopt-zoo` takes the zoo models as seed 0 only of the study whose schedule trained them."""

import pytest

from fd3d.hub import load_pretrained_config
from fd3d.studies.protocols import STUDY_EXPERT
from fd3d.studies.zoo import ZOO_ENTRIES, check_zoo_schedule


def test_the_zoo_models_schedule_is_checked_against_the_studys():
    trained = {
        int(load_pretrained_config(STUDY_EXPERT.parent / f)[0].SOLVER.MAX_ITER) for f in ZOO_ENTRIES.values()
    }
    assert len(trained) == 1, trained  # the zoo's apprentice and FD3D apprentice come from one study
    (steps,) = trained
    check_zoo_schedule(steps)
    with pytest.raises(SystemExit, match=f"trained for {steps} steps .* this study runs {2 * steps}"):
        check_zoo_schedule(2 * steps)
