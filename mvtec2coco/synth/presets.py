"""Dataset specifications the generator can mirror: counts, sizes and channels per category."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CategorySpec:
    """One category: its image size, channels, train-good count and test count per label."""

    name: str
    size: int
    channels: int
    train_good: int
    test: dict[str, int]  # label -> count, "good" included

    @property
    def defect_types(self) -> list[str]:
        return sorted(k for k in self.test if k != "good")


def _cat(name: str, size: int, channels: int, train: int, good: int, **types: int) -> CategorySpec:
    return CategorySpec(name, size, channels, train, {"good": good, **types})


# MVTec AD as published: 5,354 images, 1,258 defect masks over 15 categories.
MVTEC_AD = (
    _cat("bottle", 900, 3, 209, 20, broken_large=20, broken_small=22, contamination=21),
    _cat("cable", 1024, 3, 224, 58, bent_wire=13, cable_swap=12, combined=11, cut_inner_insulation=14,
         cut_outer_insulation=10, missing_cable=12, missing_wire=10, poke_insulation=10),
    _cat("capsule", 1000, 3, 219, 23, crack=23, faulty_imprint=22, poke=21, scratch=23, squeeze=20),
    _cat("carpet", 1024, 3, 280, 28, color=19, cut=17, hole=17, metal_contamination=17, thread=19),
    _cat("grid", 1024, 1, 264, 21, bent=12, broken=12, glue=11, metal_contamination=11, thread=11),
    _cat("hazelnut", 1024, 3, 391, 40, crack=18, cut=17, hole=18, print=17),
    _cat("leather", 1024, 3, 245, 32, color=19, cut=19, fold=17, glue=19, poke=18),
    _cat("metal_nut", 700, 3, 220, 22, bent=25, color=22, flip=23, scratch=23),
    _cat("pill", 800, 3, 267, 26, color=25, combined=17, contamination=21, crack=26, faulty_imprint=19,
         pill_type=9, scratch=24),
    _cat("screw", 1024, 1, 320, 41, manipulated_front=24, scratch_head=24, scratch_neck=25, thread_side=23,
         thread_top=23),
    _cat("tile", 840, 3, 230, 33, crack=17, glue_strip=18, gray_stroke=16, oil=18, rough=15),
    _cat("toothbrush", 1024, 3, 60, 12, defective=30),
    _cat("transistor", 1024, 3, 213, 60, bent_lead=10, cut_lead=10, damaged_case=10, misplaced=10),
    _cat("wood", 1024, 3, 247, 19, color=8, combined=11, hole=10, liquid=10, scratch=21),
    _cat("zipper", 1024, 1, 240, 32, broken_teeth=19, combined=16, fabric_border=17, fabric_interior=16,
         rough=17, split_teeth=18, squeezed_teeth=16),
)

PRESETS: dict[str, tuple[CategorySpec, ...]] = {
    "tiny": (
        _cat("bottle", 96, 3, 8, 3, broken_large=3, broken_small=3, contamination=3),
        _cat("grid", 80, 1, 6, 2, bent=3, thread=3),
    ),
    "bottle": (MVTEC_AD[0],),
    # MVTec 3D-AD's cookie: its defect types (class_ids.json 255 contamination, 254 crack, 253 hole),
    # combined images holding one defect of each, small and few images for tests.
    "cookie": (_cat("cookie", 128, 3, 10, 3, combined=4, contamination=3, crack=3, hole=3),),
    "mvtec-full": MVTEC_AD,
}
