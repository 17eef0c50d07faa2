"""A channel's rules, signed into each generation (pure); its path globs are globs.py's."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .errors import PolicyInvalid
from .globs import check_glob
from .procedure import Procedure, parse_procedures

JUNK_MODES = ("quarantine", "keep")


@dataclass(frozen=True, slots=True)
class Policy:
    """Rules signed into a generation. `preserve`: never touched; `base`: restored only from the
    store and a drift there triggers a full verify; `exclude`: left out of the snapshot;
    `junk`: what clients do with unmanaged files (quarantine or keep); `procedures`: commands
    clients run when paths change (procedure.py), written only when there are some;
    `overlay_procedures`: host overlays of the channel may add procedures (issue 18; written only
    when true, so records of older regens stay byte-identical)."""

    preserve: tuple[str, ...] = ()
    base: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    junk: str = "quarantine"
    procedures: tuple[Procedure, ...] = ()
    overlay_procedures: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"base": list(self.base), "exclude": list(self.exclude), "junk": self.junk,
                               "preserve": list(self.preserve)}
        if self.procedures:  # (absent otherwise: a policy without procedures is what older clients read)
            out["procedure"] = [p.as_dict() for p in self.procedures]
        if self.overlay_procedures:
            out["overlay_procedures"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "policy") -> Policy:
        if not isinstance(data, Mapping):
            raise PolicyInvalid(f"{where}: expected a table of rules")
        unknown = set(data) - {"preserve", "base", "exclude", "junk", "procedure", "overlay_procedures"}
        if unknown:
            raise PolicyInvalid(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")

        def globs(key: str) -> tuple[str, ...]:
            value = data.get(key, [])
            if not isinstance(value, list):
                raise PolicyInvalid(f"{where}: '{key}' must be a list of globs")
            try:
                return tuple(check_glob(v) for v in value)
            except PolicyInvalid as exc:
                raise PolicyInvalid(f"{where}: '{key}': {exc.message}") from None

        junk = data.get("junk", "quarantine")
        if junk not in JUNK_MODES:
            raise PolicyInvalid(f"{where}: 'junk' must be one of {', '.join(JUNK_MODES)}, not {junk!r}")
        procedures = parse_procedures(data["procedure"], where) if "procedure" in data else ()
        allow = data.get("overlay_procedures", False)
        if not isinstance(allow, bool):  # strictly true or false: "yes" or 1 is a typo, not a grant
            raise PolicyInvalid(f"{where}: 'overlay_procedures' must be true or false, not {allow!r}")
        return cls(preserve=globs("preserve"), base=globs("base"), exclude=globs("exclude"), junk=junk,
                   procedures=procedures, overlay_procedures=allow)

    def merged(self, preserve: Iterable[str] = (), junk: str | None = None) -> Policy:
        """The client's view: its own extra preserve globs added, its junk mode if set."""
        extra = tuple(check_glob(p) for p in preserve if p not in self.preserve)
        return Policy(self.preserve + extra, self.base, self.exclude, junk or self.junk, self.procedures,
                      self.overlay_procedures)

    def with_overlay(self, procedures: tuple[Procedure, ...], where: str) -> Policy:
        """The policy a host runs: its channel's, plus its overlay's procedures (run after the
        channel's) -- only if this channel's signed policy allows overlays to carry procedures."""
        if not procedures:
            return self
        if not self.overlay_procedures:
            raise PolicyInvalid(f"{where} carries procedures, but the channel's policy does not allow them",
                                hint="set 'overlay_procedures = true' in the channel's policy, or remove the "
                                     "overlay's procedures")
        return replace(self, procedures=parse_procedures([p.as_dict() for p in (*self.procedures, *procedures)],
                                                         where))


def load_policy_toml(path: str) -> Policy:
    import tomllib

    try:
        with open(path, "rb") as fp:
            data = tomllib.load(fp)
    except FileNotFoundError:
        raise PolicyInvalid(f"policy file {path} does not exist", hint="give an existing TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyInvalid(f"policy file {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise PolicyInvalid(f"policy file {path} is not valid TOML: values nested too deeply") from None
    except OSError as exc:
        raise PolicyInvalid(f"policy file {path} cannot be read: {exc.strerror}") from None
    section = data.get("policy", data)
    return Policy.from_dict(section, where=f"policy file {path}")


__all__ = ["Policy", "load_policy_toml"]
