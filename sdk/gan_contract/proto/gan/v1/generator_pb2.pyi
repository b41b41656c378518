from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConditioningKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONDITIONING_KIND_UNSPECIFIED: _ClassVar[ConditioningKind]
    CONDITIONING_KIND_NONE: _ClassVar[ConditioningKind]
    CONDITIONING_KIND_CLASS: _ClassVar[ConditioningKind]
    CONDITIONING_KIND_INFOGAN: _ClassVar[ConditioningKind]
CONDITIONING_KIND_UNSPECIFIED: ConditioningKind
CONDITIONING_KIND_NONE: ConditioningKind
CONDITIONING_KIND_CLASS: ConditioningKind
CONDITIONING_KIND_INFOGAN: ConditioningKind

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class ImageSpec(_message.Message):
    __slots__ = ("height", "width", "channels")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    height: int
    width: int
    channels: int
    def __init__(self, height: _Optional[int] = ..., width: _Optional[int] = ..., channels: _Optional[int] = ...) -> None: ...

class Conditioning(_message.Message):
    __slots__ = ("kind", "class_names", "num_categories", "num_continuous", "category_to_digit", "continuous_min", "continuous_max")
    KIND_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    NUM_CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    NUM_CONTINUOUS_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_TO_DIGIT_FIELD_NUMBER: _ClassVar[int]
    CONTINUOUS_MIN_FIELD_NUMBER: _ClassVar[int]
    CONTINUOUS_MAX_FIELD_NUMBER: _ClassVar[int]
    kind: ConditioningKind
    class_names: _containers.RepeatedScalarFieldContainer[str]
    num_categories: int
    num_continuous: int
    category_to_digit: _containers.RepeatedScalarFieldContainer[int]
    continuous_min: float
    continuous_max: float
    def __init__(self, kind: _Optional[_Union[ConditioningKind, str]] = ..., class_names: _Optional[_Iterable[str]] = ..., num_categories: _Optional[int] = ..., num_continuous: _Optional[int] = ..., category_to_digit: _Optional[_Iterable[int]] = ..., continuous_min: _Optional[float] = ..., continuous_max: _Optional[float] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "variant", "dataset", "image", "latent_dim", "latent_prior", "conditioning", "versions", "manifest_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    LATENT_DIM_FIELD_NUMBER: _ClassVar[int]
    LATENT_PRIOR_FIELD_NUMBER: _ClassVar[int]
    CONDITIONING_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    variant: str
    dataset: str
    image: ImageSpec
    latent_dim: int
    latent_prior: str
    conditioning: Conditioning
    versions: _containers.RepeatedScalarFieldContainer[str]
    manifest_json: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., variant: _Optional[str] = ..., dataset: _Optional[str] = ..., image: _Optional[_Union[ImageSpec, _Mapping]] = ..., latent_dim: _Optional[int] = ..., latent_prior: _Optional[str] = ..., conditioning: _Optional[_Union[Conditioning, _Mapping]] = ..., versions: _Optional[_Iterable[str]] = ..., manifest_json: _Optional[str] = ...) -> None: ...

class SampleRequest(_message.Message):
    __slots__ = ("model", "version", "count", "seed", "digit", "label", "category", "continuous", "latents", "return_latents", "first_index")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    DIGIT_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CONTINUOUS_FIELD_NUMBER: _ClassVar[int]
    LATENTS_FIELD_NUMBER: _ClassVar[int]
    RETURN_LATENTS_FIELD_NUMBER: _ClassVar[int]
    FIRST_INDEX_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    count: int
    seed: int
    digit: int
    label: str
    category: int
    continuous: _containers.RepeatedScalarFieldContainer[float]
    latents: _containers.RepeatedScalarFieldContainer[float]
    return_latents: bool
    first_index: int
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., count: _Optional[int] = ..., seed: _Optional[int] = ..., digit: _Optional[int] = ..., label: _Optional[str] = ..., category: _Optional[int] = ..., continuous: _Optional[_Iterable[float]] = ..., latents: _Optional[_Iterable[float]] = ..., return_latents: bool = ..., first_index: _Optional[int] = ...) -> None: ...

class SampleResponse(_message.Message):
    __slots__ = ("model", "version", "count", "image", "images", "seed", "latents", "classes", "start")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    LATENTS_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    count: int
    image: ImageSpec
    images: bytes
    seed: int
    latents: _containers.RepeatedScalarFieldContainer[float]
    classes: _containers.RepeatedScalarFieldContainer[int]
    start: int
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., count: _Optional[int] = ..., image: _Optional[_Union[ImageSpec, _Mapping]] = ..., images: _Optional[bytes] = ..., seed: _Optional[int] = ..., latents: _Optional[_Iterable[float]] = ..., classes: _Optional[_Iterable[int]] = ..., start: _Optional[int] = ...) -> None: ...

class EncodeRequest(_message.Message):
    __slots__ = ("model", "version", "count", "image", "images")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    count: int
    image: ImageSpec
    images: bytes
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., count: _Optional[int] = ..., image: _Optional[_Union[ImageSpec, _Mapping]] = ..., images: _Optional[bytes] = ...) -> None: ...

class EncodeResponse(_message.Message):
    __slots__ = ("model", "version", "count", "latent_dim", "latents")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LATENT_DIM_FIELD_NUMBER: _ClassVar[int]
    LATENTS_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    count: int
    latent_dim: int
    latents: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., count: _Optional[int] = ..., latent_dim: _Optional[int] = ..., latents: _Optional[_Iterable[float]] = ...) -> None: ...
