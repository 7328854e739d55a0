"""The bench's scenarios are the halls its sections say they are."""

from __future__ import annotations

from bench.scenarios import default_hall, scaled_hall


def test_the_saturated_point_is_65k_systems_with_the_default_hall_s_crews() -> None:
    base = default_hall()
    hall = scaled_hall(64, scale_crews=False)
    assert hall.systems == 64 * base.systems == 65_280
    assert hall.repair.crews == base.repair.crews
    assert hall.spare_systems.count == 64 * base.spare_systems.count
    assert hall.spares["psu"].stock == 64 * base.spares["psu"].stock


def test_a_scaled_hall_scales_its_crews_by_default() -> None:
    assert scaled_hall(4).repair.crews == 4 * default_hall().repair.crews
