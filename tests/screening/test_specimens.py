"""Which specimen an image is of: the folders by default, or the lab's file-name pattern."""

from __future__ import annotations

import pytest

from ganad_clinic.errors import ConfigError
from ganad_clinic.screening.service import ServiceConfig
from ganad_clinic.screening.specimens import AccessionRule


def test_a_pattern_names_the_specimen_and_an_unmatched_file_falls_back_to_its_folder():
    rule = AccessionRule(r"^(?P<accession>[A-Z]+-\d+)_")
    assert rule.accession("/inbox/HEM-17_field_2.jpg", "/inbox") == "HEM-17"
    assert rule.accession("/inbox/ACC-9/scan.jpg", "/inbox") == "ACC-9"  # no match: the subfolder
    assert rule.accession("/inbox/scan.jpg", "/inbox") == "scan"
    assert AccessionRule().accession("/inbox/HEM-17_field_2.jpg", "/inbox") == "HEM-17_field_2"


@pytest.mark.parametrize(("pattern", "said"), [("([A-Z", "is not a regular expression"),
                                               (r"^([A-Z]+)_", "has no group named accession")])
def test_a_bad_pattern_is_refused_before_anything_starts(tmp_path, pattern, said):
    with pytest.raises(ConfigError, match=said):
        ServiceConfig((tmp_path,), accession_pattern=pattern)
