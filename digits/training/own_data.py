"""A data module of your own, named by class path: how the CLI tells, and what it reads from it.

``python -m digits.fit --data my_module.MyData`` trains any ``LightningDataModule``. The
model needs the number of features and of classes; a data module says them as
``num_features`` and ``num_classes`` (``DigitsDataModule`` and ``examples/wine.py`` do),
and one that does not is read for them: Lightning's older ``dims``, or its first
training batch and its labels (docs/adapt.md).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import itertools
import math
import sys
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, NamedTuple

import lightning as L
import torch
import yaml
from lightning.pytorch.utilities.seed import isolate_rng
from torch.utils.data import IterableDataset

from digits.data import DigitsDataModule
from digits.errors import BugInYourCode, UsageError
from digits.extras import class_at

HELP_FLAG = "--data.help"


def names_other_data(args: Any) -> bool:
    """Whether a command line names a data module other than ``DigitsDataModule``.

    Decided before parsing: ``--data CLASS`` (or ``--data '{class_path: ...}'``), or a
    config file whose ``data`` has a ``class_path``. LightningCLI's subclass mode would
    write every run's data settings as ``class_path`` and ``init_args``, so it is used
    only where it is needed, and runs on this project's data keep their configs' form.
    ``--data.help CLASS`` asks for it whatever the class (``DigitsDataModule`` too): only
    subclass mode lists a class's arguments, and help writes nothing.
    """
    return any(
        named.flag == HELP_FLAG or not is_default_data(named.class_path)
        for named in named_data_classes(args)
    )


class NamedData(NamedTuple):
    """A data class as a command line names it: by a flag, or in a config file."""

    flag: str  # how it is written: "--data", "--data.help", or a config's "class_path:"
    class_path: str  # as written (empty for --data.help with nothing after it)
    where: str | None = None  # the config file that names it: "FILE, under data", "FILE"


def named_data_classes(args: Any) -> list[NamedData]:
    """The class paths a command line names for its data, in its order."""
    args = _tokens(args)
    named = []
    for index, token in enumerate(args):
        flag, equals, value = token.partition("=")
        if flag in ("--data", HELP_FLAG, "--config", "-c") and not equals and index + 1 < len(args):
            value = args[index + 1]  # --data VALUE, not --data=VALUE (nor --data=, empty)
        if flag == HELP_FLAG:
            named.append(NamedData(flag, value))  # a class path or name (or none), never a config
        elif flag == "--data" and not value.endswith(".py") and Path(value).is_file():
            class_path = _data_class(value, whole_config=False) or ""
            named.append(NamedData("class_path:", class_path, where=value))  # --data FILE
        elif flag == "--data":
            named.append(NamedData(flag, _data_class(value, whole_config=False) or ""))
        elif flag in ("--config", "-c"):
            class_path = _data_class(value, whole_config=True) or ""
            named.append(NamedData("class_path:", class_path, where=f"{value}, under data"))
    return [data for data in named if data.class_path or data.flag == HELP_FLAG]


def _tokens(args: Any) -> list[str]:
    """A command line's words: ``sys.argv``'s when none is given, none for a dict or
    Namespace of settings (which name this project's data)."""
    if args is None:
        args = sys.argv[1:]
    return [str(token) for token in args] if isinstance(args, (list, tuple)) else []


def check_named_data_class(named: NamedData) -> None:
    """A data class named wrongly (none at all, a folder, a file, a module, this project's
    own by its path, a class not imported) or that cannot be imported, said with the
    reason and in the words that named it, a flag or a config file's key (jsonargparse
    only says that the value is not a ``LightningDataModule``, or not "a dot import path").

    A module or package missing is the user's to fix (one line); anything else its
    module raises while imported is a bug in it and keeps its traceback.
    """
    try:
        _check_data_class(named.class_path, named.flag)
    except ValueError as error:  # a BugInYourCode keeps its traceback as it is
        if named.where is None:
            raise
        raise ValueError(f"{named.where}: {error}") from None


def _check_data_class(class_path: str, flag: str) -> None:
    if not class_path or class_path.startswith("-"):  # --data.help, --data --other.flag
        raise ValueError(
            f"{flag} needs a class: {flag} module.ClassName (digits.DigitsDataModule is this "
            "project's)"
        )
    if Path(class_path).is_dir() and not is_dotted_name(class_path):
        raise names_a_module(class_path, "package", flag)  # --data ./folder, --data .
    module_name, _, name = class_path.rpartition(".")
    if name == "py":
        module_file = Path(f"{module_name}.py")  # as the shell completed it
        raise ValueError(
            f"{flag} {class_path} is a file; name the class in it: {flag} "
            f"{module_file.stem}.ClassName"
            + (f", run from {module_file.parent}" if module_file.parent != Path() else "")
        )
    if flag != HELP_FLAG and is_default_data(class_path):
        # Named, it would be parsed as a config file's path: the plain data group holds
        # its settings, which keeps runs on this project's data in their configs' form.
        raise ValueError(
            f"{flag} {class_path} is this project's data module, used when --data is left "
            "out: leave it out and give its settings as --data.NAME VALUE (in a config "
            "file, under data: without class_path)"
        )
    if not is_dotted_name(class_path):
        raise ValueError(
            f"{flag} {class_path} is not a class path: name the class by its module, "
            f"{flag} module.ClassName"
        )
    if not module_name:
        if kind := module_kind(name):
            raise names_a_module(name, kind, flag)
        if name not in imported_data_class_names():
            raise ValueError(
                f"{flag} {name}: no data module class of that name is imported; name it by "
                f"its module: {flag} module.{name}"
            )
        return  # a class already imported: jsonargparse finds it by its name alone
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and f"{module_name}.".startswith(f"{error.name}."):
            raise ValueError(
                f"{flag} {class_path}: no module {module_name!r} here; run from the folder "
                "that holds it, or install its package"
            ) from None
        raise ValueError(
            f"{flag} {class_path}: {module_name} imports {error.name!r}, which is not "
            f"installed (pip install the package that provides it)"
        ) from None
    except Exception as error:
        raise BugInYourCode(
            f"importing {module_name} failed: {type(error).__name__}: {error}"
        ) from error
    if not hasattr(module, name):
        if kind := module_kind(class_path):
            raise names_a_module(class_path, kind, flag)
        raise ValueError(f"{flag} {class_path}: {module_name} has no {name!r}")
    found = getattr(module, name)
    if isinstance(found, L.LightningDataModule) or builds_a_data_module(found):
        return  # an importable instance, or a function returning one: jsonargparse takes both
    if inspect.ismodule(found):
        raise names_a_module(class_path, module_kind(class_path) or "module", flag)
    if not (isinstance(found, type) and issubclass(found, L.LightningDataModule)):
        what = "another class" if isinstance(found, type) else f"a {type(found).__name__}"
        raise ValueError(
            f"{flag} {class_path} is {what}, not a LightningDataModule: name the data "
            f"module's class, {flag} module.ClassName"
        )


def builds_a_data_module(found: Any) -> bool:
    """Whether ``found`` is a function annotated to return a data module (a factory that
    jsonargparse calls with the settings given, as it would a class)."""
    if isinstance(found, type) or not callable(found):
        return False
    try:
        returns = typing.get_type_hints(found).get("return")
    except (NameError, TypeError):  # an annotation that cannot be resolved
        return False
    return isinstance(returns, type) and issubclass(returns, L.LightningDataModule)


def is_dotted_name(name: str) -> bool:
    """Whether ``name`` could be a class path: Python names joined by dots."""
    return all(part.isidentifier() for part in name.split("."))


def imported_data_class_names() -> set[str]:
    """The names of the data module classes imported so far (``DigitsDataModule``'s among
    them): those jsonargparse resolves from a name without its module."""
    found, unseen = set(), [L.LightningDataModule]
    while unseen:
        for subclass in unseen.pop().__subclasses__():
            if subclass.__name__ not in found:
                found.add(subclass.__name__)
                unseen.append(subclass)
    return found


ModuleKind = Literal["module", "package"]


def names_a_module(name: str, kind: ModuleKind, flag: str) -> ValueError:
    """``--data examples.wine`` (or ``--data my_data``, ``--data examples``): a module or a
    package (or a folder) where a class belongs."""
    if kind == "package":
        setting = f"--data.NAME {name}" if flag.startswith("-") else f"init_args: {{NAME: {name}}}"
        return ValueError(
            f"{flag} {name} is a folder, not a data module class: name the class by its "
            f"module, {flag} module.ClassName (a folder your class reads is one of its "
            f"settings, {setting})"
        )
    return ValueError(f"{flag} {name} is a module; name the class in it: {flag} {name}.ClassName")


def module_kind(name: str) -> ModuleKind | None:
    """What ``name`` is importable as, without importing it: a module (``examples.wine``)
    or a package (``examples``: any folder on the path is a namespace package)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # its parent is a module, not a package
        return None
    if spec is None:
        return None
    return "module" if spec.submodule_search_locations is None else "package"


def _data_class(value: str, whole_config: bool) -> str | None:
    """The data's class path a ``--data`` or ``--config`` value names, if it names one."""
    if not whole_config and value.endswith(".py"):
        return value  # a module's file for a class path: check_named_data_class says so
    if Path(value).is_file():
        try:
            text = Path(value).read_text()
        except OSError:
            return None  # the parser itself says what is wrong with the file
    elif not whole_config and value.lstrip().startswith("{"):
        text = value  # --data '{class_path: ...}'
    elif not whole_config and Path(value).is_dir():
        return value  # a folder for a class path: check_named_data_class says so
    elif whole_config or _names_a_file(value):
        return None  # a file that is not there: the parser says so
    else:
        return value  # --data CLASS
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        return None  # the parser itself says what is wrong with it
    if whole_config:
        loaded = loaded.get("data") if isinstance(loaded, dict) else None
        if isinstance(loaded, str):  # data: its_own.yaml (beside the config), or data: CLASS
            beside = Path(value).parent / loaded
            if beside.is_file():
                return _data_class(str(beside), whole_config=False)
            if _names_a_file(loaded):
                return None  # read from beside the config only: the parser says it is not there
            return _data_class(loaded, whole_config=False)
    class_path = loaded.get("class_path") if isinstance(loaded, dict) else None
    return str(class_path) if class_path else None


def _names_a_file(value: str) -> bool:
    """Whether a value that is no file here is meant as one (a config's path), not a class."""
    return value.endswith((".yaml", ".yml", ".json")) or "/" in value


def is_default_data(class_path: str) -> bool:
    """Whether a class path names ``DigitsDataModule`` (also as ``digits.DigitsDataModule``)."""
    if not is_dotted_name(class_path):
        return False  # a folder, or no name at all: check_named_data_class says which
    try:
        return class_at(class_path) is DigitsDataModule
    except ValueError:
        return False  # not this project's class; the parser says it does not exist


def further_eval_sets(data: L.LightningDataModule) -> list[str]:
    """The names of the data's further evaluation sets (``DigitsDataModule.eval_sets``)."""
    return list(getattr(data, "eval_sets", ()))


def num_features_of(data: L.LightningDataModule) -> int:
    """``data.num_features`` (or Lightning's older ``dims``), else the value ``setup`` set,
    else the size of one training sample."""
    with _read_ahead(data, "num_features"):
        declared = getattr(data, "num_features", None)
        if declared is None and getattr(data, "dims", None):
            declared = math.prod(data.dims)
        if declared is None:
            loader = _training_loader(data)
            declared = getattr(data, "num_features", None)  # set by setup
            if declared is None:
                features, _ = training_pair(type(data).__name__, next(iter(loader)))
                declared = features[0].numel()
        return int(declared)


def num_classes_of(data: L.LightningDataModule) -> int:
    """``data.num_classes``, else the value ``setup`` set, else what the training labels show."""
    with _read_ahead(data, "num_classes"):
        declared = getattr(data, "num_classes", None)
        if declared is None:
            loader = _training_loader(data)
            declared = getattr(data, "num_classes", None)  # set by setup
        if declared is not None:
            return int(declared)
        data_name = type(data).__name__
        if isinstance(getattr(loader, "dataset", None), IterableDataset):
            raise UsageError(
                f"{data_name}'s training batches come from an IterableDataset, which may not "
                "end: set num_classes"
            )
        targets = [label_summary(training_pair(data_name, batch)[1]) for batch in loader]
    return classes_in(data_name, targets)


def training_pair(data_name: str, batch: Any) -> Any:
    """A training batch as the model takes it, ``(features, labels)``; said otherwise,
    since unpacking a dict would take its keys for the features and the labels."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch
    if isinstance(batch, dict):
        kind = f"a dict with keys {list(batch)}"
    elif isinstance(batch, (tuple, list)):
        kind = f"a {type(batch).__name__} of {len(batch)}"
    else:
        kind = f"a {type(batch).__name__}"
    raise UsageError(
        f"{data_name}'s training batches are {kind}: they must be (features, labels) pairs"
    )


CLASS_INDEX_DTYPES = (torch.int64, torch.uint8)  # what cross-entropy takes as class indices


def label_summary(labels: Any) -> Any:
    """What ``classes_in`` needs of one batch's targets, not the batch itself: its
    distinct class indices, or else an empty tensor of its dtype and its shape but the
    batch's (a new one: a view of no rows would keep the whole batch). A data set too
    large to hold its labels twice is read a batch at a time."""
    if not isinstance(labels, torch.Tensor):
        return labels  # said as it is by classes_in
    if labels.ndim == 1 and not labels.is_complex():  # torch has no unique of complex
        return labels.unique()
    return labels.new_empty((0, *labels.shape[1:]))


def classes_in(data_name: str, targets: list[Any]) -> int:
    """How many classes training targets show: a distribution's width, else one more
    than the largest class index, where every index from 0 must have a sample.

    Labels 1..3 (as many data sets number their classes) would otherwise train a network
    of four classes, one of which no sample has, and nothing would say so. Every batch is
    judged, not the first alone: a CSV where one row says 3.0 makes the batches that
    hold it floats.
    """
    if not targets:
        raise UsageError(f"{data_name} yielded no training batches to read num_classes from")
    for labels in targets:  # each batch's, judged before any is counted
        if not isinstance(labels, torch.Tensor):
            kind = type(labels).__name__
            if isinstance(labels, (list, tuple)) and labels:  # how a DataLoader batches str
                kind += f" of {type(labels[0]).__name__}"
            raise UsageError(
                f"{data_name}'s training labels are a {kind}, not a tensor: class indices "
                "must be integers from 0 (sklearn's LabelEncoder makes them so)"
            )
        distribution = labels.ndim == 2 and labels.is_floating_point() and labels.shape[1] > 1
        if labels.ndim != 1 and not distribution:
            shape = f"({', '.join(['batch', *map(str, labels.shape[1:])])})"
            raise UsageError(
                f"{data_name}'s training labels have the shape {shape}: one class index "
                "per sample, of the shape (batch,), or a distribution of floats over the "
                "classes per sample, (batch, classes)"
            )
    widths = {labels.shape[-1] for labels in targets if labels.ndim == 2}
    if widths:  # each target a distribution over the classes
        if len(widths) > 1 or any(labels.ndim != 2 for labels in targets):
            raise UsageError(
                f"{data_name}'s training targets are distributions in some batches and of "
                "other widths or class indices in others: set num_classes"
            )
        return int(widths.pop())
    others = [labels.dtype for labels in targets if labels.dtype not in CLASS_INDEX_DTYPES]
    if others:
        some = " in some batches" if len(others) < len(targets) else ""
        raise UsageError(
            f"{data_name}'s training labels are {others[0]}{some}: class indices must be "
            "int64 integers from 0 (torch.as_tensor(labels, dtype=torch.int64))"
        )
    seen = torch.cat(targets).unique().tolist()  # sorted
    if not seen:
        raise UsageError(f"{data_name}'s training batches hold no labels to read num_classes from")
    if seen[0] >= 0 and len(seen) == seen[-1] + 1:
        return len(seen)
    held = set(seen)
    below = range(seen[-1])  # not built: labels may be ids as large as 10**12
    unused = list(itertools.islice((n for n in below if n not in held), 5))
    raise UsageError(
        f"{data_name}'s training labels run {seen[0]}..{seen[-1]}"
        + (f", and no sample has {unused}" if unused else "")
        + ": they must run from 0 to the number of classes - 1 (sklearn's LabelEncoder "
        "makes them so); set num_classes only where a class has no training sample"
    )


def _training_loader(data: L.LightningDataModule) -> Any:
    """The training batches of a data module that did not declare its shape.

    Lightning calls ``prepare_data`` and ``setup`` again when training starts, as it
    does for every data module; they are expected to be safe to call twice.
    """
    data.prepare_data()
    data.setup("fit")
    return data.train_dataloader()


@contextmanager
def _read_ahead(data: L.LightningDataModule, attribute: str) -> Iterator[None]:
    """A data module read for ``attribute`` before training, as if it had not been.

    What fails in its own code is its bug, and keeps its traceback. Whatever its
    ``setup`` and batches draw from the global generators, which the seed has set by
    now, is given back, so that the run trains as it would had it declared ``attribute``
    (CUDA's generator aside: the data is read on the CPU here, and reading CUDA's state
    would start CUDA before the trainer chooses its devices). A ``setup`` that draws only
    the first time it runs, or a loader's own generator, is not given back.
    """
    try:
        with isolate_rng(include_cuda=False):
            yield
    except UsageError:
        raise  # found in what it gave, not in its code: said in one line
    except Exception as error:
        raise BugInYourCode(
            f"{type(data).__name__} failed while it was read for {attribute} (its "
            f"attribute, or else its training batches): {type(error).__name__}: {error}"
        ) from error
