"""What the console scripts share: help a person can read, and errors in one line.

`run(main, Tool(...))` replaces `absl.app.run(main)` in a launcher:

* ``--help`` (``-h``, ``--helpshort``) prints the tool's usage and examples, its own flags with
  one line each, the ``--config.*`` keys that matter with their defaults, and exits 0; absl's own
  flags stay behind ``--helpfull``.
* Before absl parses anything, ``--config`` must name a config file that exists (not a folder),
  and every ``--config.<key>`` must be a key of that config ("unknown config key 'steps'; did
  you mean 'num_steps'?"). Flag errors are one line too.
* A :class:`UsageError` raised by the tool (a missing input, an output folder that cannot be
  written, ...) and a missing asset print ``<tool>: error: <message>`` and exit 2, with no
  traceback unless ``--debug`` is given; folders the run made (:func:`output_dir`) and left
  empty are removed.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import pathlib
import re
import sys
import textwrap
from collections.abc import Callable, Sequence

from absl import app, flags

HELP_ARGS = ("--help", "-help", "-h", "--h", "-?", "--helpshort", "-helpshort")
EXIT_USAGE = 2


class UsageError(ValueError):
    """An error the person at the command line can fix; its message is all they see."""


@dataclasses.dataclass
class Tool:
    """name: the console script; usage: what it does and examples (the launcher's docstring);
    config_keys: {key: one line} of the --config.* keys worth knowing."""
    name: str
    usage: str
    config_keys: dict[str, str] = dataclasses.field(default_factory=dict)


_created: list[pathlib.Path] = []


def output_dir(path, flag: str = "--output_dir") -> pathlib.Path:
    """Check that `path` can be an output folder (before any work), create it, and remember it
    for removal if the run then fails with nothing written into it."""
    from facerecon_jax.io import output_folder

    path = output_folder.check_writable(path, flag)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    _created.extend(missing)
    return path


def _remove_empty_created() -> None:
    for p in _created:
        try:
            p.rmdir()              # only when empty
        except OSError:
            pass
    _created.clear()


def log_to_file(folder, program: str) -> pathlib.Path:
    """Send log records (absl's, orbax's, JAX's: the root logger's) to <folder>/<program>.log;
    the console keeps warnings and errors only. Returns the log file's path."""
    import logging as std_logging

    from absl import logging

    path = pathlib.Path(folder) / f"{program}.log"
    handler = std_logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.PythonFormatter())
    handler.setLevel(std_logging.DEBUG)
    root = std_logging.getLogger()
    root.addHandler(handler)
    logging.get_absl_handler().setLevel(std_logging.WARNING)
    return path


# -- config files and keys ---------------------------------------------------------------------

_CONFIG_DEFAULTS: dict[str, str] = {}     # config flag name -> default config file


def define_config(tool_name: str, default: str, help_text: str, name: str = "config"):
    """`config_flags.DEFINE_config_file`, after checking the command line's --config file and
    --config.<key> overrides: ml_collections reads them when the flag is defined and fails
    there with a traceback, so a bad one ends the program here with one line instead."""
    from ml_collections import config_flags

    _CONFIG_DEFAULTS[name] = default
    args = sys.argv[1:]
    if "--debug" not in args and not _wants_help(args):
        try:
            check_config_args(args)
        except UsageError as e:
            sys.stderr.write(f"{tool_name}: error: {e}\n")
            sys.exit(EXIT_USAGE)
    return config_flags.DEFINE_config_file(name, default, help_text)


def _config_flag_names() -> list[str]:
    return list(_CONFIG_DEFAULTS)


def _arg_value(args: Sequence[str], name: str) -> str | None:
    value = None
    for i, a in enumerate(args):
        if a == "--":
            break
        if a.startswith(f"--{name}="):
            value = a.split("=", 1)[1]
        elif a == f"--{name}" and i + 1 < len(args):
            value = args[i + 1]
    return value


def _load_config(spec: str, name: str):
    path_str, _, arg = spec.partition(":")
    path = pathlib.Path(path_str).expanduser()
    if not path.exists():
        raise UsageError(f"--{name} {path_str}: no such config file")
    if path.is_dir():
        raise UsageError(f"--{name} {path_str} is a folder; give a config file, e.g. "
                         f"{path / 'debug.py'}" if (path / "debug.py").exists()
                         else f"--{name} {path_str} is a folder; give a config .py file")
    from facerecon_jax.io import config_files
    try:
        return config_files.get_config(path, arg or None)
    except Exception as e:  # any failure in the user's file is reported
        raise UsageError(f"--{name} {path_str} cannot be loaded: {type(e).__name__}: {e}") \
            from e


def _keys(config, prefix: str = "") -> dict[str, object]:
    """Dotted keys of a ConfigDict -> value (nested dicts recursed, also listed themselves)."""
    out = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        out[key] = v
        if hasattr(v, "items"):
            out.update(_keys(v, key + "."))
    return out


def check_config_args(args: Sequence[str]) -> None:
    """Every --config file exists and every --config.<key> is one of its keys (else
    UsageError with the nearest key)."""
    for name in _config_flag_names():
        overrides = []
        for a in args:
            if a == "--":
                break
            if a.startswith(f"--{name}."):
                overrides.append(a[len(name) + 3:].split("=", 1)[0])
        spec = _arg_value(args, name)
        if spec is None and not overrides:
            continue
        spec = spec or _CONFIG_DEFAULTS[name]
        config = _load_config(spec, name)
        keys = _keys(config)
        for key in overrides:
            parent = key.rpartition(".")[0]
            if key in keys or (parent in keys and hasattr(keys[parent], "items")
                               and not keys[parent]):      # an open dict, e.g. overrides
                continue
            close = difflib.get_close_matches(key, list(keys), n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else \
                f"; see --help for the keys of {spec}"
            raise UsageError(f"unknown config key '{key}'{hint}")


# -- help --------------------------------------------------------------------------------------

def _first_line(text: str) -> str:
    text = " ".join((text or "").split())
    end = text.find(". ")
    return text if end < 0 else text[:end + 1]


def help_text(tool: Tool, module_name: str) -> str:
    lines = [f"{tool.name}: " + textwrap.dedent(tool.usage).strip(), "", "Flags:"]
    by_module = flags.FLAGS.flags_by_module_dict()
    if module_name == "__main__":          # python -m launch.x: absl files them under argv[0]
        module_name = sys.argv[0]
    fl = list(by_module.get(module_name, []))
    fl += [flags.FLAGS[n] for n in _CONFIG_DEFAULTS if n in flags.FLAGS]
    seen = set()
    for f in sorted(fl, key=lambda f: f.name):
        if f.name in seen:
            continue
        seen.add(f.name)
        default = "" if f.default in (None, "", []) else f" (default: {f.default_as_str})"
        if f.name in _CONFIG_DEFAULTS:
            root = pathlib.Path(__file__).resolve().parents[2]
            default = f" (default: {os.path.relpath(_CONFIG_DEFAULTS[f.name], root)})"
        text = _first_line(re.sub(r";\s*repeat this option to specify a list of values", "",
                                  f.help))
        lines.append(f"  --{f.name}: {text}{default}")
    lines.append("  --debug: show the traceback of an error instead of one line.")
    if tool.config_keys:
        lines += ["", "Config keys (override any with --config.<key>=<value>):"]
        name = next(iter(_config_flag_names()), "config")
        try:
            keys = _keys(_load_config(_CONFIG_DEFAULTS[name], name))
        except UsageError:
            keys = {}
        for key, text in tool.config_keys.items():
            value = f" (default: {keys[key]!r})" if key in keys else ""
            lines.append(f"  --config.{key}: {text}{value}")
    lines += ["", "Every flag, absl's own included: --helpfull"]
    return "\n".join(lines) + "\n"


def _wants_help(args: Sequence[str]) -> bool:
    for a in args:
        if a == "--":
            return False
        if a in HELP_ARGS:
            return True
    return False


# -- running -----------------------------------------------------------------------------------

def _fail(tool: Tool, message: str) -> None:
    sys.stderr.write(f"{tool.name}: error: {message}\n")
    _remove_empty_created()
    sys.exit(EXIT_USAGE)


def _user_error_types() -> tuple:
    from facerecon_jax.io.assets import AssetMissingError
    return (UsageError, AssetMissingError)


def run(main: Callable, tool: Tool, argv: Sequence[str] | None = None) -> None:
    """`absl.app.run(main)` with readable help and one-line errors (see the module doc)."""
    argv = list(sys.argv if argv is None else argv)
    debug = "--debug" in argv[1:argv.index("--") if "--" in argv else len(argv)]
    if debug:
        argv.remove("--debug")
    if _wants_help(argv[1:]):
        sys.stdout.write(help_text(tool, main.__module__))
        sys.exit(0)
    try:
        check_config_args(argv[1:])
    except UsageError as e:
        if debug:
            raise
        _fail(tool, str(e))

    def parse(args):
        try:
            return flags.FLAGS(args)
        except flags.Error as e:
            if debug:
                raise
            msg = str(e)
            m = re.search(r"Flag --(\w+) must have a value other than None", msg)
            if m:
                msg = f"--{m.group(1)} is required"
            _fail(tool, f"{msg}; see {tool.name} --help")
        except (AttributeError, KeyError, TypeError, ValueError, OSError) as e:   # ml_collections
            if debug:
                raise
            _fail(tool, f"bad --config value: {e}; see {tool.name} --help")

    def guarded(args):
        try:
            return main(args)
        except _user_error_types() as e:
            if debug:
                raise
            _fail(tool, str(e))

    app.run(guarded, argv=argv, flags_parser=parse)
