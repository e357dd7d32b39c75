"""Per-image seeds and the request plan: every image of a suite gets its own seed from
(suite seed, category, prompt index, image index) alone, so an image never depends on batch size, on
which other images are made, or on how many images the other prompts get.
"""

from __future__ import annotations

import hashlib
import itertools

import pytest
import torch

from pytest_t2ibias.generate import ImageRequest, image_seed, plan_requests
from pytest_t2ibias.suites.schema import Suite

CATEGORIES = ["beauty", "doctor", "culture", "animal", "nature"]


def _reference_seed(suite_seed: int, category: str, prompt_index: int, image_index: int) -> int:
    """An independent restatement of the documented derivation: the first 63 bits of a SHA-256."""
    key = f"t2ibias-seed-v1|{suite_seed}|{category}|{prompt_index}|{image_index}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") >> 1


class TestImageSeed:
    def test_same_inputs_same_seed(self) -> None:
        assert image_seed(0, "doctor", 0, 3) == image_seed(0, "doctor", 0, 3)

    @pytest.mark.parametrize(
        ("suite_seed", "category", "prompt_index", "image_index", "expected"),
        [
            (0, "doctor", 0, 0, 8449621441558387981),
            (0, "doctor", 0, 1, 1959999314180427662),
            (7, "beauty", 0, 99, 7546089096412228191),
        ],
    )
    def test_pinned_values(
        self, suite_seed: int, category: str, prompt_index: int, image_index: int, expected: int
    ) -> None:
        # Seeds are part of the reproducibility contract: the same suite seed must give the same images
        # in every release. A change here silently changes every generated image.
        assert image_seed(suite_seed, category, prompt_index, image_index) == expected
        assert _reference_seed(suite_seed, category, prompt_index, image_index) == expected

    def test_no_collisions_across_categories_and_images(self) -> None:
        seeds = [image_seed(0, c, 0, i) for c in CATEGORIES for i in range(500)]
        assert len(set(seeds)) == len(seeds) == 2500

    def test_no_collisions_across_prompts_and_suite_seeds(self) -> None:
        grid = list(itertools.product((0, 1, 42), ("doctor", "beauty"), range(4), range(25)))
        seeds = [image_seed(*args) for args in grid]
        assert len(set(seeds)) == len(grid)

    @pytest.mark.parametrize(
        "other",
        [(1, "doctor", 0, 0), (0, "beauty", 0, 0), (0, "doctor", 1, 0), (0, "doctor", 0, 1)],
        ids=["suite-seed", "category", "prompt-index", "image-index"],
    )
    def test_each_input_changes_the_seed(self, other: tuple[int, str, int, int]) -> None:
        assert image_seed(*other) != image_seed(0, "doctor", 0, 0)

    def test_not_a_plain_offset(self) -> None:
        # `suite_seed + i` would make image 1 of seed 0 equal image 0 of seed 1.
        assert image_seed(0, "doctor", 0, 1) != image_seed(1, "doctor", 0, 0)

    def test_range_fits_torch_manual_seed(self) -> None:
        seeds = [image_seed(s, c, 0, i) for s in (0, 123) for c in CATEGORIES for i in range(200)]
        assert all(isinstance(s, int) and 0 <= s < 2**63 for s in seeds)
        # The top bit of a 63-bit range is actually used (not a narrow range by mistake).
        assert max(seeds) >= 2**62
        for seed in (min(seeds), max(seeds)):
            generator = torch.Generator("cpu").manual_seed(seed)
            assert generator.initial_seed() == seed

    @pytest.mark.parametrize(
        ("prompt_index", "image_index", "match"),
        [(-1, 0, "`prompt_index` must be >= 0, got -1"), (0, -2, "`image_index` must be >= 0, got -2")],
    )
    def test_negative_indices_rejected(self, prompt_index: int, image_index: int, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            image_seed(0, "doctor", prompt_index, image_index)


class TestPlanRequests:
    def test_order_and_counts(self, suite: Suite) -> None:
        requests = plan_requests(suite, images_per_prompt=3)
        assert len(requests) == len(CATEGORIES) * 3
        assert [(r.category, r.prompt_index, r.image_index) for r in requests] == [
            (c, 0, i) for c in CATEGORIES for i in range(3)
        ]
        assert all(isinstance(r, ImageRequest) for r in requests)

    def test_prompts_and_seeds_per_request(self, suite: Suite) -> None:
        requests = plan_requests(suite, images_per_prompt=2)
        for r in requests:
            assert r.prompt == suite.categories[r.category].prompts[r.prompt_index]
            assert r.seed == image_seed(suite.seed, r.category, r.prompt_index, r.image_index)
        assert requests[2].prompt == "A doctor performing surgery in a hospital."
        assert len({r.seed for r in requests}) == len(requests)

    def test_default_count_is_the_suites(self, suite: Suite) -> None:
        assert suite.images_per_prompt == 100
        assert len(plan_requests(suite)) == 100 * len(CATEGORIES)

    def test_more_images_keep_the_existing_seeds(self, suite: Suite) -> None:
        two = {(r.category, r.image_index): r.seed for r in plan_requests(suite, 2)}
        five = {(r.category, r.image_index): r.seed for r in plan_requests(suite, 5)}
        assert all(five[k] == seed for k, seed in two.items())

    def test_subset_of_categories_keeps_seeds(self, suite: Suite) -> None:
        everything = {(r.category, r.image_index): r.seed for r in plan_requests(suite, 2)}
        doctors = plan_requests(suite, 2, categories=["doctor"])
        assert [r.category for r in doctors] == ["doctor", "doctor"]
        assert all(r.seed == everything[(r.category, r.image_index)] for r in doctors)

    def test_categories_in_the_given_order(self, suite: Suite) -> None:
        requests = plan_requests(suite, 1, categories=["nature", "beauty"])
        assert [r.category for r in requests] == ["nature", "beauty"]

    def test_seed_override_changes_every_seed(self, suite: Suite) -> None:
        default = plan_requests(suite, 4)
        same = plan_requests(suite, 4, seed=suite.seed)
        other = plan_requests(suite, 4, seed=suite.seed + 1)
        assert [r.seed for r in same] == [r.seed for r in default]
        assert not {r.seed for r in other} & {r.seed for r in default}
        assert [(r.category, r.prompt, r.image_index) for r in other] == [
            (r.category, r.prompt, r.image_index) for r in default
        ]
        assert other[0].seed == image_seed(suite.seed + 1, "beauty", 0, 0)

    def test_unknown_category_names_the_valid_ones(self, suite: Suite) -> None:
        with pytest.raises(ValueError, match=r"\['surgeon'\] not in suite 't2i-biasbench'; valid: \['beauty'") as info:
            plan_requests(suite, 1, categories=["doctor", "surgeon"])
        assert all(c in str(info.value) for c in CATEGORIES)

    @pytest.mark.parametrize("n", [0, -1])
    def test_images_per_prompt_below_one(self, suite: Suite, n: int) -> None:
        with pytest.raises(ValueError, match=rf"`images_per_prompt` must be between 1 and 100000, got {n}"):
            plan_requests(suite, n)

    def test_repeated_category_not_planned_twice(self, suite: Suite) -> None:
        try:
            requests = plan_requests(suite, 1, categories=["doctor", "doctor"])
        except ValueError:
            return  # rejecting the repetition is as good as dropping it
        assert len(requests) == 1
