"""The request planner: validation names the field, and image i gets the same inputs however it is chunked."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from gan_contract.errors import InvalidArgument
from gan_contract.latents import MAX_SEED
from gan_contract.manifest import Manifest, load_manifest
from gan_contract.request import (
    Plan,
    SampleSpec,
    class_for_digit,
    class_for_label,
    condition_asked,
    inputs_from_codes,
    model_inputs,
    plan_request,
    reported_classes,
)
from gan_contract.request import draw as draw_request_codes


def _load(root: Path, name: str) -> Manifest:
    return load_manifest(root / name / "1", verify_files=False)


@pytest.fixture(scope="module")
def dcgan(bundled_models: Path) -> Manifest:
    return _load(bundled_models, "dcgan")


@pytest.fixture(scope="module")
def cgan(bundled_models: Path) -> Manifest:
    return _load(bundled_models, "cgan")


@pytest.fixture(scope="module")
def infogan(bundled_models: Path) -> Manifest:
    return _load(bundled_models, "infogan")


@pytest.fixture(scope="module")
def fashion(bundled_models: Path) -> Manifest:
    return _load(bundled_models, "cgan-fashion")


@pytest.fixture(scope="module")
def unsupervised(bundled_models: Path) -> Manifest:
    return _load(bundled_models, "infogan-unsupervised")


def _with_conditioning(manifest: Manifest, **changes) -> Manifest:
    return dataclasses.replace(manifest, conditioning=dataclasses.replace(manifest.conditioning, **changes))


def _invalid(manifest: Manifest, spec: SampleSpec) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        plan_request(manifest, spec)
    return info.value


# -- every InvalidArgument names its field first ------------------------------


@pytest.mark.parametrize(
    ("model", "spec", "field"),
    [
        ("dcgan", SampleSpec(count=1, seed=-1), "seed"),
        ("dcgan", SampleSpec(count=1, seed=2**64), "seed"),
        ("dcgan", SampleSpec(count=1, first_index=-1), "first_index"),
        ("dcgan", SampleSpec(count=1, digit=3), "digit"),
        ("dcgan", SampleSpec(count=1, label="3"), "label"),
        ("dcgan", SampleSpec(count=1, category=3), "category"),
        ("dcgan", SampleSpec(count=1, continuous=(0.0, 0.0)), "continuous"),
        ("dcgan", SampleSpec(count=2, latents=np.zeros((1, 100), np.float32)), "latents"),
        ("cgan", SampleSpec(count=1, digit=10), "digit"),
        ("cgan", SampleSpec(count=1, digit=-1), "digit"),
        ("cgan", SampleSpec(count=1, label="ten"), "label"),
        ("cgan", SampleSpec(count=1, category=0), "category"),
        ("cgan", SampleSpec(count=1, continuous=(0.0,)), "continuous"),
        ("fashion", SampleSpec(count=1, digit=7), "digit"),
        ("infogan", SampleSpec(count=1, category=10), "category"),
        ("infogan", SampleSpec(count=1, category=-1), "category"),
        ("infogan", SampleSpec(count=1, continuous=(0.0,)), "continuous"),
        ("infogan", SampleSpec(count=1, continuous=(0.0, math.nan)), "continuous"),
        ("infogan", SampleSpec(count=1, continuous=(math.inf, 0.0)), "continuous"),
        ("infogan", SampleSpec(count=1, continuous=(0.0, 0.0, 0.0)), "continuous"),
        ("infogan", SampleSpec(count=1, latents=np.zeros((1, 100), np.float32)), "latents"),
    ],
)
def test_invalid_argument_message_starts_with_its_field(
    request: pytest.FixtureRequest, model: str, spec: SampleSpec, field: str
) -> None:
    err = _invalid(request.getfixturevalue(model), spec)
    assert err.field == field
    assert str(err).startswith(f"{field}: ")
    assert err.status == "INVALID_ARGUMENT"


def test_unconditional_model_lists_the_conditional_ones_when_told(dcgan: Manifest) -> None:
    with pytest.raises(InvalidArgument, match=r"^digit: .*unconditional.*cgan, infogan"):
        plan_request(dcgan, SampleSpec(count=1, digit=3), conditional_models=["cgan", "infogan"])
    with pytest.raises(InvalidArgument, match=r"^digit: .*none are loaded"):
        plan_request(dcgan, SampleSpec(count=1, digit=3), conditional_models=[])
    err = _invalid(dcgan, SampleSpec(count=1, digit=3))
    assert "models that take one" not in str(err)


# -- at most one condition -------------------------------------------------------


def test_condition_asked_names_the_one_given() -> None:
    assert condition_asked(None, None, None) is None
    assert condition_asked(0, None, None) == "digit"  # 0 is a digit, not "no digit"
    assert condition_asked(None, "", None) == "label"
    assert condition_asked(None, None, 0) == "category"


@pytest.mark.parametrize(
    ("digit", "label", "category", "second"),
    [(1, "1", None, "label"), (1, None, 1, "category"), (None, "1", 1, "category"), (0, "0", 0, "label")],
)
def test_more_than_one_condition_is_refused(digit, label, category, second) -> None:
    with pytest.raises(InvalidArgument) as info:
        condition_asked(digit, label, category)
    assert info.value.field == second
    assert str(info.value).startswith(f"{second}: give at most one of digit, label, category")


def test_plan_refuses_two_conditions_before_looking_at_values(cgan: Manifest) -> None:
    # digit 99 alone would be a "digit" error; with a label too the conflict is reported first
    err = _invalid(cgan, SampleSpec(count=1, digit=99, label="3"))
    assert err.field == "label"
    assert "at most one" in str(err)


# -- digit / label / category → the class the model is fed ------------------------


def test_digit_on_a_class_model_is_the_index_of_its_name(cgan: Manifest) -> None:
    # cgan names its classes "0".."9" in order
    assert [class_for_digit(cgan, d) for d in range(10)] == list(range(10))
    reversed_names = _with_conditioning(cgan, class_names=tuple("9876543210"))
    assert class_for_digit(reversed_names, 7) == 2
    assert class_for_digit(reversed_names, 0) == 9


def test_digit_on_a_class_model_named_by_words_points_to_label(fashion: Manifest) -> None:
    with pytest.raises(InvalidArgument, match=r"^digit: .*tshirt.*use label instead"):
        class_for_digit(fashion, 0)


def test_label_on_a_class_model(fashion: Manifest, cgan: Manifest) -> None:
    # tshirt, trouser, pullover, dress, coat, sandal, shirt, sneaker, bag, boot
    assert class_for_label(fashion, "tshirt") == 0
    assert class_for_label(fashion, "sneaker") == 7
    assert class_for_label(fashion, "boot") == 9
    assert class_for_label(cgan, "4") == 4
    with pytest.raises(InvalidArgument, match=r"^label: .*'Sneaker'.*tshirt, trouser"):
        class_for_label(fashion, "Sneaker")


def test_digit_on_infogan_goes_through_the_category_map(unsupervised: Manifest, infogan: Manifest) -> None:
    # A map such as Hungarian matching gives (the bundled model's own changes with each retraining).
    unsupervised = _with_conditioning(unsupervised, category_to_digit=(9, 6, 5, 1, 7, 2, 3, 4, 8, 0))
    expected = {9: 0, 6: 1, 5: 2, 1: 3, 7: 4, 2: 5, 3: 6, 4: 7, 8: 8, 0: 9}
    assert {d: class_for_digit(unsupervised, d) for d in range(10)} == expected
    # the semi-supervised model's map is the identity
    assert [class_for_digit(infogan, d) for d in range(10)] == list(range(10))


def test_label_on_infogan_is_its_digit_through_the_map(unsupervised: Manifest) -> None:
    # class_names are the digits' names; label "1" is digit 1, drawn by category 3
    unsupervised = _with_conditioning(unsupervised, category_to_digit=(9, 6, 5, 1, 7, 2, 3, 4, 8, 0))
    assert class_for_label(unsupervised, "1") == 3
    assert class_for_label(unsupervised, "0") == 9


def test_infogan_without_a_map_or_with_a_gap_refuses_digits(infogan: Manifest) -> None:
    unmapped = _with_conditioning(infogan, category_to_digit=())
    with pytest.raises(InvalidArgument, match=r"^digit: .*no category-to-digit map; use category"):
        class_for_digit(unmapped, 3)
    gap = _with_conditioning(infogan, category_to_digit=(0, 0, 1, 2, 3, 4, 5, 6, 7, 8))  # nothing draws 9
    with pytest.raises(InvalidArgument, match=r"^digit: .*no category matched to digit 9"):
        class_for_digit(gap, 9)
    assert class_for_digit(gap, 0) == 0  # the first category that draws it


def test_label_on_infogan_that_cannot_be_mapped_names_the_label_field(infogan: Manifest) -> None:
    # The caller sent a label, so the error must name "label", not a digit field they never sent.
    unmapped = _with_conditioning(infogan, category_to_digit=())
    with pytest.raises(InvalidArgument) as info:
        plan_request(unmapped, SampleSpec(count=1, label="3"))
    assert info.value.field == "label"
    assert str(info.value).startswith("label: ")
    gap = _with_conditioning(infogan, category_to_digit=(0, 0, 1, 2, 3, 4, 5, 6, 7, 8))
    with pytest.raises(InvalidArgument) as info:
        plan_request(gap, SampleSpec(count=1, label="9"))
    assert info.value.field == "label"


def test_label_on_infogan_with_more_than_ten_names(infogan: Manifest) -> None:
    # class_names may name more than ten things; category_to_digit indexes class_names.
    names = tuple(f"glyph{i}" for i in range(12))
    wide = _with_conditioning(
        infogan, class_names=names, num_categories=12, category_to_digit=(11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
    )
    assert class_for_label(wide, "glyph11") == 0
    assert class_for_label(wide, "glyph0") == 11
    assert plan_request(wide, SampleSpec(count=1, label="glyph10")).fixed_class == 1


def test_plan_fixed_class(cgan: Manifest, infogan: Manifest, unsupervised: Manifest, dcgan: Manifest) -> None:
    assert plan_request(cgan, SampleSpec(count=1, digit=0)).fixed_class == 0
    assert plan_request(cgan, SampleSpec(count=1, label="6")).fixed_class == 6
    assert plan_request(unsupervised, SampleSpec(count=1, digit=1)).fixed_class == 3
    assert plan_request(infogan, SampleSpec(count=1, category=9)).fixed_class == 9
    assert plan_request(infogan, SampleSpec(count=1, category=0)).fixed_class == 0
    assert plan_request(dcgan, SampleSpec(count=4)).fixed_class is None
    assert plan_request(infogan, SampleSpec(count=4)).fixed_class is None


# -- continuous codes and latents -----------------------------------------------


def test_continuous_codes_are_accepted_when_finite_and_counted(infogan: Manifest) -> None:
    # values outside continuous_range are allowed (traversals go past the training range)
    plan = plan_request(infogan, SampleSpec(count=2, continuous=(-2.5, 3.0)))
    assert plan.spec.continuous == (-2.5, 3.0)
    err = _invalid(infogan, SampleSpec(count=1, continuous=(0.0,)))
    assert "2 continuous codes, got 1 values" in str(err)


def test_latents_shape_is_count_by_latent_dim(dcgan: Manifest) -> None:
    ok = np.zeros((3, 100), np.float32)
    assert plan_request(dcgan, SampleSpec(count=3, latents=ok)).spec.latents is ok
    for shape in [(3, 99), (2, 100), (300,), (3, 100, 1)]:
        err = _invalid(dcgan, SampleSpec(count=3, latents=np.zeros(shape, np.float32)))
        assert err.field == "latents"
        assert "3 x 100 = 300" in str(err)
    bad = ok.copy()
    bad[1, 7] = np.nan
    assert _invalid(dcgan, SampleSpec(count=3, latents=bad)).field == "latents"
    bad[1, 7] = -np.inf
    assert _invalid(dcgan, SampleSpec(count=3, latents=bad)).field == "latents"


# -- seed and first_index bounds --------------------------------------------------


def test_seed_bounds(dcgan: Manifest) -> None:
    assert plan_request(dcgan, SampleSpec(count=1, seed=0)).spec.seed == 0
    assert plan_request(dcgan, SampleSpec(count=1, seed=2**64 - 1)).spec.seed == 2**64 - 1
    assert MAX_SEED == 18446744073709551615
    assert _invalid(dcgan, SampleSpec(count=1, seed=2**64)).field == "seed"
    assert _invalid(dcgan, SampleSpec(count=1, seed=-1)).field == "seed"


def test_first_index_bounds(dcgan: Manifest) -> None:
    # documented: first_index + count must stay below 2**64
    count = 3
    last_ok = 2**64 - 1 - count
    plan = plan_request(dcgan, SampleSpec(count=count, seed=2**64 - 1, first_index=last_ok))
    feeds, _ = model_inputs(dcgan, plan, 0, count)
    assert feeds["z"].shape == (count, 100)
    assert np.all(np.isfinite(feeds["z"]))
    err = _invalid(dcgan, SampleSpec(count=count, first_index=last_ok + 1))
    assert err.field == "first_index"
    assert _invalid(dcgan, SampleSpec(count=1, first_index=2**64)).field == "first_index"


@pytest.mark.parametrize("first", [2**63 - 1, 2**63, 2**64 - 1 - 4])
def test_streams_high_in_the_index_range_are_their_own(dcgan: Manifest, first: int) -> None:
    # Per-image scheme: image i is the Philox stream with key = seed and counter (0, 0, first_index + i, 0),
    # for any index the planner accepts; no two images of a request share a stream.
    dcgan = dataclasses.replace(dcgan, latent_scheme="philox4x64-per-image")  # the bundled dcgan may name the other scheme
    count = 4
    plan = plan_request(dcgan, SampleSpec(count=count, seed=7, first_index=first))
    z = model_inputs(dcgan, plan, 0, count)[0]["z"]
    for i in range(count):
        counter = np.array([0, 0, first + i, 0], dtype=np.uint64)
        expected = np.random.Generator(np.random.Philox(key=7, counter=counter)).standard_normal(100)
        np.testing.assert_array_equal(z[i], expected.astype(np.float32))
    assert len({row.tobytes() for row in z}) == count


def test_first_index_shifts_the_streams(dcgan: Manifest) -> None:
    whole = model_inputs(dcgan, plan_request(dcgan, SampleSpec(count=10, seed=4)), 0, 10)[0]["z"]
    shifted = model_inputs(dcgan, plan_request(dcgan, SampleSpec(count=4, seed=4, first_index=6)), 0, 4)[0]["z"]
    np.testing.assert_array_equal(shifted, whole[6:10])


# -- model_inputs: image i is the same whatever the split ---------------------------

SPLITS = [[(0, 24)], [(0, 1), (1, 1), (2, 22)], [(0, 7), (7, 9), (16, 8)], [(0, 12), (12, 12)]]


def _chunked(manifest: Manifest, plan: Plan, split: list[tuple[int, int]]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    parts = [model_inputs(manifest, plan, s, n) for s, n in split]
    feeds = {k: np.concatenate([f[k] for f, _ in parts]) for k in parts[0][0]}
    return feeds, np.concatenate([c for _, c in parts])


@pytest.mark.parametrize(
    ("model", "spec"),
    [
        ("dcgan", SampleSpec(count=24, seed=11)),
        ("cgan", SampleSpec(count=24, seed=11)),
        ("cgan", SampleSpec(count=24, seed=11, digit=5)),
        ("infogan", SampleSpec(count=24, seed=11)),
        ("infogan", SampleSpec(count=24, seed=11, category=2, continuous=(0.25, -0.5))),
        ("infogan", SampleSpec(count=24, seed=11, first_index=1000)),
        ("dcgan", SampleSpec(count=24, latents=np.arange(2400, dtype=np.float32).reshape(24, 100))),
    ],
)
def test_model_inputs_do_not_depend_on_the_split(request: pytest.FixtureRequest, model: str, spec: SampleSpec) -> None:
    manifest = request.getfixturevalue(model)
    plan = plan_request(manifest, spec)
    whole_feeds, whole_classes = model_inputs(manifest, plan, 0, 24)
    expected_names = {"dcgan": {"z"}, "cgan": {"z", "label"}, "infogan": {"z", "category", "continuous"}}[model]
    assert set(whole_feeds) == expected_names
    for split in SPLITS:
        feeds, classes = _chunked(manifest, plan, split)
        assert set(feeds) == set(whole_feeds)
        for name in feeds:
            assert feeds[name].dtype == whole_feeds[name].dtype
            np.testing.assert_array_equal(feeds[name], whole_feeds[name])
        np.testing.assert_array_equal(classes, whole_classes)
    # ...and image i differs from image j: the split is not hiding a constant
    assert len({row.tobytes() for row in whole_feeds["z"]}) == 24


def test_feed_dtypes_and_shapes(cgan: Manifest, infogan: Manifest) -> None:
    feeds, classes = model_inputs(cgan, plan_request(cgan, SampleSpec(count=5)), 0, 5)
    assert feeds["z"].dtype == np.float32 and feeds["z"].shape == (5, 100)
    assert feeds["label"].dtype == np.int64 and feeds["label"].shape == (5,)
    assert np.all((0 <= feeds["label"]) & (feeds["label"] < 10))
    feeds, classes = model_inputs(infogan, plan_request(infogan, SampleSpec(count=5)), 0, 5)
    assert feeds["z"].shape == (5, 62)
    assert feeds["category"].dtype == np.float32 and feeds["category"].shape == (5, 10)
    # one-hot rows, hot at the image's class
    np.testing.assert_array_equal(feeds["category"].sum(axis=1), np.ones(5, np.float32))
    np.testing.assert_array_equal(np.argmax(feeds["category"], axis=1), classes)
    assert feeds["continuous"].dtype == np.float32 and feeds["continuous"].shape == (5, 2)
    assert np.all((-1 <= feeds["continuous"]) & (feeds["continuous"] <= 1))


# -- fixed values override the drawn ones, keeping the rest -------------------------


def test_fixed_digit_keeps_z_and_sets_every_label(cgan: Manifest) -> None:
    free = model_inputs(cgan, plan_request(cgan, SampleSpec(count=16, seed=3)), 0, 16)
    fixed = model_inputs(cgan, plan_request(cgan, SampleSpec(count=16, seed=3, digit=7)), 0, 16)
    np.testing.assert_array_equal(fixed[0]["z"], free[0]["z"])
    np.testing.assert_array_equal(fixed[0]["label"], np.full(16, 7))
    np.testing.assert_array_equal(fixed[1], np.full(16, 7))
    assert len(set(free[1].tolist())) > 1  # drawn labels vary


def test_fixed_category_and_continuous_on_infogan(infogan: Manifest) -> None:
    free, free_classes = model_inputs(infogan, plan_request(infogan, SampleSpec(count=8, seed=9)), 0, 8)
    spec = SampleSpec(count=8, seed=9, category=4, continuous=(0.5, -1.5))
    fixed, classes = model_inputs(infogan, plan_request(infogan, spec), 0, 8)
    np.testing.assert_array_equal(fixed["z"], free["z"])
    one_hot = np.zeros((8, 10), np.float32)
    one_hot[:, 4] = 1.0
    np.testing.assert_array_equal(fixed["category"], one_hot)
    np.testing.assert_array_equal(fixed["continuous"], np.array([[0.5, -1.5]] * 8, np.float32))
    np.testing.assert_array_equal(classes, np.full(8, 4))
    # only the category fixed: the drawn continuous codes stay
    only_cat, _ = model_inputs(infogan, plan_request(infogan, SampleSpec(count=8, seed=9, category=4)), 0, 8)
    np.testing.assert_array_equal(only_cat["continuous"], free["continuous"])


def test_latents_replace_z_only(infogan: Manifest) -> None:
    given = np.linspace(-1, 1, 4 * 62, dtype=np.float32).reshape(4, 62)
    free, free_classes = model_inputs(infogan, plan_request(infogan, SampleSpec(count=4, seed=2)), 0, 4)
    with_z, classes = model_inputs(infogan, plan_request(infogan, SampleSpec(count=4, seed=2, latents=given)), 1, 2)
    np.testing.assert_array_equal(with_z["z"], given[1:3])
    np.testing.assert_array_equal(with_z["category"], free["category"][1:3])
    np.testing.assert_array_equal(with_z["continuous"], free["continuous"][1:3])
    np.testing.assert_array_equal(classes, free_classes[1:3])


def test_inputs_from_codes_overrides(infogan: Manifest, dcgan: Manifest) -> None:
    codes = draw_request_codes(infogan, 5, 0, 3)
    feeds, classes = inputs_from_codes(infogan, codes, classes=[2, 0, 9], continuous=(0.1, 0.2))
    np.testing.assert_array_equal(classes, np.array([2, 0, 9]))
    assert classes.dtype == np.int64
    np.testing.assert_array_equal(np.argmax(feeds["category"], axis=1), [2, 0, 9])
    np.testing.assert_array_equal(feeds["continuous"], np.array([[0.1, 0.2]] * 3, np.float32))
    z = np.ones((3, 62), np.float64)
    feeds, _ = inputs_from_codes(infogan, codes, z=z)
    assert feeds["z"].dtype == np.float32 and feeds["z"].flags.c_contiguous
    np.testing.assert_array_equal(feeds["z"], np.ones((3, 62), np.float32))
    feeds, _ = inputs_from_codes(dcgan, draw_request_codes(dcgan, 5, 0, 3))
    assert set(feeds) == {"z"}


# -- reported classes --------------------------------------------------------------


def test_reported_classes(dcgan: Manifest, cgan: Manifest, infogan: Manifest) -> None:
    drawn = np.array([0, 3, 0, 7], np.int64)
    out = reported_classes(dcgan, drawn)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [-1, -1, -1, -1])
    for manifest in (cgan, infogan):
        out = reported_classes(manifest, drawn)
        assert out.dtype == np.int32
        np.testing.assert_array_equal(out, [0, 3, 0, 7])


def test_unconditional_model_reports_minus_one_for_every_image(dcgan: Manifest) -> None:
    _, classes = model_inputs(dcgan, plan_request(dcgan, SampleSpec(count=6, seed=1)), 0, 6)
    np.testing.assert_array_equal(reported_classes(dcgan, classes), np.full(6, -1, np.int32))
