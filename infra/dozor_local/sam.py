"""Read template.yaml and apply the SAM transform offline, as CloudFormation would on deploy.

The transform (samtranslator) takes about half a second to import, so the translated template is
cached on disk, keyed by the template's bytes, the parameters, the region and the translator
version: a cache hit cannot be stale.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

# Bump when the way the template is prepared for translation changes (invalidates the cache).
_CACHE_FORMAT = "1"
_CACHE_DIR_ENV = "DOZOR_LOCAL_CACHE_DIR"

# Translated templates never deploy code anywhere: every artifact location becomes this dummy.
_DUMMY_CODE = "s3://dozor-local-artifacts/code.zip"
_ARTIFACT_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
}

# Translations made or read from disk by this process, by cache key.
_TRANSLATED: dict[str, dict[str, Any]] = {}

_YamlLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_YamlLoader):  # type: ignore[misc,valid-type]
    """A YAML loader that understands CloudFormation short-form tags (`!Ref`, `!GetAtt`, `!Sub`, ...).

    A subclass, so the global `yaml.SafeLoader` is left alone (samtranslator's own helper patches it).
    """


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    key = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {key: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a CloudFormation/SAM template (YAML or JSON) into plain dicts with long-form intrinsics.

    Parsed once per file version and process; callers get their own copy.
    """
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return copy.deepcopy(_parse(resolved, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _parse(path: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # a SafeLoader subclass
    if not isinstance(loaded, dict) or "Resources" not in loaded:
        raise ValueError(f"{path} is not a CloudFormation template (no Resources)")
    return loaded


def _prepare_for_translation(template: dict[str, Any]) -> dict[str, Any]:
    """Point every local artifact path at a dummy S3 object: samtranslator only accepts s3:// URIs."""
    prepared = copy.deepcopy(template)
    function_globals = prepared.get("Globals", {}).get("Function", {})
    if "CodeUri" in function_globals:
        function_globals["CodeUri"] = _DUMMY_CODE
    for resource in prepared["Resources"].values():
        prop = _ARTIFACT_PROPERTIES.get(resource.get("Type", ""))
        properties = resource.get("Properties")
        if prop and isinstance(properties, dict) and isinstance(properties.get(prop), str):
            properties[prop] = _DUMMY_CODE
    return prepared


def _cache_dir() -> Path:
    configured = os.environ.get(_CACHE_DIR_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "dozor-local-cache"


def translate(
    template: Mapping[str, Any], *, region: str, parameters: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Return the plain CloudFormation template that the SAM transform makes of `template`."""
    if "Transform" not in template:
        return copy.deepcopy(dict(template))
    params = dict(parameters or {})
    key_material = json.dumps(
        [_CACHE_FORMAT, metadata.version("aws-sam-translator"), region, params, template],
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(key_material.encode()).hexdigest()
    if digest in _TRANSLATED:
        return copy.deepcopy(_TRANSLATED[digest])
    cache_file = _cache_dir() / f"{digest}.json"
    try:
        cached: dict[str, Any] = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    else:
        _TRANSLATED[digest] = copy.deepcopy(cached)
        return cached

    translated = _translate_uncached(_prepare_for_translation(dict(template)), region=region, params=params)
    _TRANSLATED[digest] = copy.deepcopy(translated)
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(translated), encoding="utf-8")
        os.replace(partial, cache_file)  # atomic: parallel test workers never read half a file
    except OSError as exc:  # a read-only tmp is no reason to fail a deploy
        log.debug("could not cache the translated template: %s", exc)
    return translated


def _translate_uncached(template: dict[str, Any], *, region: str, params: dict[str, Any]) -> dict[str, Any]:
    # Imported here: half a second that a cache hit never pays.
    import boto3  # noqa: PLC0415
    from samtranslator.parser.parser import Parser  # noqa: PLC0415
    from samtranslator.translator.translator import Translator  # noqa: PLC0415

    # The session only tells the translator the region; the empty policy map means no IAM calls
    # (named managed policies would fail to translate, which is what we want to notice).
    session = boto3.session.Session(region_name=region)
    translator = Translator(None, Parser(), boto_session=session)
    result: dict[str, Any] = translator.translate(
        template, parameter_values=params, get_managed_policy_map=dict
    )
    return result
