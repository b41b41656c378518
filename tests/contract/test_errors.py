"""Domain errors: each names a status, and the server maps each status to its gRPC code."""

from __future__ import annotations

import inspect

import grpc
import pytest
from gan_contract import errors
from gan_contract.errors import (
    GanError,
    InvalidArgument,
    ModelNotFound,
    ModelUnavailable,
    ResourceExhausted,
    Unavailable,
)
from gan_server.errors import grpc_code

EXPECTED = {
    GanError: grpc.StatusCode.INTERNAL,
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    ModelNotFound: grpc.StatusCode.NOT_FOUND,
    ModelUnavailable: grpc.StatusCode.FAILED_PRECONDITION,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}

EXAMPLES = {
    GanError: lambda: GanError("something broke"),
    InvalidArgument: lambda: InvalidArgument("count", "must be >= 1"),
    ModelNotFound: lambda: ModelNotFound("nope", None, ["dcgan"]),
    ModelUnavailable: lambda: ModelUnavailable("model 'dcgan' is unavailable: model.onnx has sha256 ..."),
    ResourceExhausted: lambda: ResourceExhausted("response would be 80 MiB"),
    Unavailable: lambda: Unavailable("draining"),
}


def test_every_contract_error_is_covered_here() -> None:
    # a new error class must get a row in EXPECTED (and a mapping in gan_server.errors)
    defined = {
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, GanError) and cls.__module__ == errors.__name__
    }
    assert defined == set(EXPECTED)


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda c: c.__name__)
def test_grpc_code(cls: type[GanError]) -> None:
    exc = EXAMPLES[cls]()
    assert isinstance(exc, cls)
    assert grpc_code(exc) is EXPECTED[cls]
    # the status name and the code's name agree
    assert exc.status == EXPECTED[cls].name


def test_unknown_status_is_internal() -> None:
    class Odd(GanError):
        status = "NOT_A_STATUS"

    class Cancelled(GanError):
        status = "CANCELLED"  # a real gRPC code the contract does not use

    assert grpc_code(Odd("x")) is grpc.StatusCode.INTERNAL
    assert grpc_code(Cancelled("x")) is grpc.StatusCode.INTERNAL


def test_subclasses_keep_their_parents_status() -> None:
    class TooManyImages(ResourceExhausted):
        pass

    class BadDigit(InvalidArgument):
        pass

    assert grpc_code(TooManyImages("x")) is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert grpc_code(BadDigit("digit", "x")) is grpc.StatusCode.INVALID_ARGUMENT


def test_invalid_argument_starts_with_its_field() -> None:
    exc = InvalidArgument("first_index", "must be >= 0")
    assert exc.field == "first_index"
    assert str(exc) == "first_index: must be >= 0"


def test_model_not_found_messages() -> None:
    assert str(ModelNotFound("x", None, ["dcgan", "cgan"])) == "model 'x' not found; available: dcgan, cgan"
    assert str(ModelNotFound("x", "", [])) == "model 'x' not found; available: none"
    assert str(ModelNotFound("dcgan", "7", ["dcgan:1"])) == "model 'dcgan' version '7' not found; available: dcgan:1"


def test_all_are_exceptions_callers_can_catch_as_one() -> None:
    for make in EXAMPLES.values():
        with pytest.raises(GanError):
            raise make()
