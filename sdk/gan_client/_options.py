"""The arguments of the calls that take many, declared once, as dataclasses.

``GanClient`` and ``AsyncGanClient`` write ``sample``, ``sample_stream`` and
``interpolate`` as methods of one options object; :func:`takes` gives each the
options' own signature, so ``client.sample("dcgan", 8, seed=3, digit=7)``
builds ``SampleOptions("dcgan", 8, seed=3, digit=7)`` and hands it on.
``help()`` shows the full argument list, and type checkers see it through the
ParamSpec. Each argument and its default is written here and nowhere else.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

import numpy as np

P = ParamSpec("P")
Options = TypeVar("Options")
Self = TypeVar("Self")
R = TypeVar("R")


@dataclass(frozen=True, eq=False)
class SampleOptions:
    """What ``sample`` and ``sample_stream`` take.

    Args:
        model: the model's name (see ``list_models``).
        n: number of images (default 1, or one per row of ``latents``).
        seed: image i is drawn from stream (seed, first_index + i): the same
            image whatever ``n`` or chunking.
        digit: 0-9, for class-conditional MNIST models and InfoGAN (through
            its category-to-digit map).
        label: a class name, e.g. "sneaker".
        category: a raw InfoGAN category.
        continuous: InfoGAN continuous codes, one value per code.
        latents: explicit ``z``, shape (n, latent_dim).
        version: a model version (default: the latest).
        return_latents: fill ``result.latents`` with the ``z`` used.
        first_index: index of the first image in the seed's sequence.
        timeout: this call's deadline in seconds (default: the client's); a
            stream's covers the whole stream.
    """

    model: str
    n: int | None = None
    seed: int = 0
    _: KW_ONLY
    digit: int | None = None
    label: str | None = None
    category: int | None = None
    continuous: Sequence[float] | None = None
    latents: np.ndarray | None = None
    version: str | None = None
    return_latents: bool = False
    first_index: int = 0
    timeout: float | None = None


@dataclass(frozen=True, eq=False)
class InterpolateOptions:
    """What ``interpolate`` takes.

    Args:
        model: the model's name.
        start, end: a seed (its image 0's ``z``, as the server draws it) or a
            latent vector (latent_dim,).
        steps: frames, ends included (>= 2).
        method: "lerp" or "slerp".
        digit, label, category: the class every frame draws; conditional
            models need one.
        continuous: InfoGAN continuous codes (default: the middle of their range).
        version: a model version (default: the latest).
        timeout: each call's deadline in seconds (default: the client's).
    """

    model: str
    start: int | np.ndarray
    end: int | np.ndarray
    steps: int = 10
    method: str = "lerp"
    _: KW_ONLY
    digit: int | None = None
    label: str | None = None
    category: int | None = None
    continuous: Sequence[float] | None = None
    version: str | None = None
    timeout: float | None = None


def takes(
    options: Callable[P, Options],
) -> Callable[[Callable[[Self, Options], R]], Callable[Concatenate[Self, P], R]]:
    """Turn ``method(self, opts)`` into ``method(self, <the arguments of options>)``.

    Works for plain and ``async`` methods (which stay coroutine functions);
    the options object is built when the method runs, so a wrong keyword is
    a TypeError there (for an ``async`` method: when it is awaited).
    """
    params = list(inspect.signature(options).parameters.values())

    def decorate(method: Callable[[Self, Options], R]) -> Callable[Concatenate[Self, P], R]:
        own = inspect.signature(method)
        wrapper: Any
        if inspect.iscoroutinefunction(method):

            @functools.wraps(method)
            async def wrapper(self: Self, /, *args: Any, **kwargs: Any) -> Any:
                return await method(self, options(*args, **kwargs))  # type: ignore[misc]

        else:

            @functools.wraps(method)
            def wrapper(self: Self, /, *args: Any, **kwargs: Any) -> Any:
                return method(self, options(*args, **kwargs))

        wrapper.__signature__ = own.replace(parameters=[next(iter(own.parameters.values())), *params])
        return wrapper  # type: ignore[no-any-return]

    return decorate
