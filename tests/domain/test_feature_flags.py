"""Properties of Kinde's flag values and the ``feature_flags`` claim (``domain/feature_flags.py``).

Values written through Kinde's string form read back as the same value; any text is either a
value of the type or a ``ValueError`` (a 400), never another exception; and the bound checked at
write time holds for the claim of every user, whichever overrides apply to them.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from claimflow.domain import FeatureFlag, FlagType, FlagValue, OverrideLevel
from claimflow.domain.feature_flags import (
    MAX_INTEGER,
    claim_bytes,
    feature_flags_claim,
    parse_value,
    resolve,
    value_text,
    worst_case_claim_bytes,
)

strings = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn")), max_size=255
).filter(str.isprintable)
values_by_type: dict[FlagType, st.SearchStrategy[FlagValue]] = {
    FlagType.BOOLEAN: st.booleans(),
    FlagType.INTEGER: st.integers(-MAX_INTEGER, MAX_INTEGER),
    FlagType.STRING: strings,
}


@st.composite
def flag_with_values(draw: st.DrawFn) -> tuple[FeatureFlag, FlagValue, FlagValue, FlagValue]:
    flag_type = draw(st.sampled_from(list(FlagType)))
    values = values_by_type[flag_type]
    flag = FeatureFlag(
        id="flag_" + draw(st.text("0123456789abcdef", min_size=1, max_size=8)),
        key=draw(st.from_regex(r"[a-z_]{1,20}", fullmatch=True)),
        name="Flag",
        type=flag_type,
        default_value=draw(values),
        allow_override_level=draw(st.sampled_from(list(OverrideLevel))),
    )
    return flag, flag.default_value, draw(values), draw(values)


@given(st.sampled_from(list(FlagType)).flatmap(lambda t: st.tuples(st.just(t), values_by_type[t])))
def test_a_value_reads_back_from_its_string_form(typed: tuple[FlagType, FlagValue]) -> None:
    flag_type, value = typed
    assert parse_value(flag_type, value_text(value)) == value


@given(st.sampled_from(list(FlagType)), st.text(max_size=300))
def test_any_text_is_a_value_or_a_value_error(flag_type: FlagType, raw: str) -> None:
    try:
        value = parse_value(flag_type, raw)
    except ValueError:
        return
    assert isinstance(value, {FlagType.BOOLEAN: bool, FlagType.INTEGER: int}.get(flag_type, str))
    assert parse_value(flag_type, value_text(value)) == value


@given(st.lists(flag_with_values(), max_size=6, unique_by=lambda f: f[0].key), st.data())
def test_every_users_claim_fits_the_worst_case_bound(
    flags: list[tuple[FeatureFlag, FlagValue, FlagValue, FlagValue]], data: st.DataObject
) -> None:
    candidates = [(flag, value) for flag, *values in flags for value in values]
    bound = worst_case_claim_bytes(candidates)
    resolved = []
    for flag, _default, org_value, user_value in flags:
        org = data.draw(st.sampled_from([None, org_value]))
        user = data.draw(st.sampled_from([None, user_value]))
        resolved.append(resolve(flag, org, user))
    assert claim_bytes(feature_flags_claim(resolved)) <= bound


@given(flag_with_values())
def test_overrides_apply_only_where_the_level_allows(
    flagged: tuple[FeatureFlag, FlagValue, FlagValue, FlagValue],
) -> None:
    flag, default, org_value, user_value = flagged
    level = flag.allow_override_level
    got = resolve(flag, org_value, user_value).value
    if level is OverrideLevel.USER:
        assert got == user_value
    elif level is OverrideLevel.ORGANIZATION:
        assert got == org_value
    else:
        assert got == default
    assert resolve(flag, None, None).claim_entry() == {"t": flag.type.claim_code, "v": default}
