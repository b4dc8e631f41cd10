"""Media in the conversation: ``input_image`` / ``input_file`` / ``input_audio`` parts of a
Responses message, and image or audio blocks of an MCP tool result, as the chat-completion
content parts vLLM's own chat rendering takes (``image_url``, ``audio_url``, ``input_audio``).

vLLM's renderer then loads them with its media connector (data URLs; http(s) URLs under the
server's ``--allowed-media-domains``; ``file:`` URLs only under ``--allowed-local-media-path``),
runs the model's multimodal processor and puts ``multi_modal_data`` on the engine prompt, as for
its own chat completions.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from mcp import types

from vllm_mcp_ext.errors import InvalidRequest, Unsupported
from vllm_mcp_ext.types.content import TEXT_PARTS

MEDIA_PARTS = frozenset({"image_url", "audio_url", "input_audio"})
# Files given to the model as their text (decoded as UTF-8).
_TEXT_MIME = ("text/", "application/json", "application/xml", "application/x-yaml", "application/yaml")


def message_content(content: Any, param: str) -> str | list[dict[str, Any]]:
    """A user or system message's content for the chat template: a string when every part is
    text (the prompt stays as it was), else chat content parts with the media as vLLM takes it."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest("message content must be a string or an array", param=f"{param}.content")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        where = f"{param}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in TEXT_PARTS:
            parts.append({"type": "text", "text": str(part.get("text", ""))})  # type: ignore[union-attr]
        elif kind == "input_image":
            parts.append(_image(part, where))  # type: ignore[arg-type]
        elif kind == "input_file":
            parts.append(_file(part, where))  # type: ignore[arg-type]
        elif kind == "input_audio":
            parts.append(_audio(part, where))  # type: ignore[arg-type]
        else:
            raise Unsupported(f"content part type {kind!r} is not supported", param=where)
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def input_parts(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A user message's content (as `message_content` made it) as Responses input parts again:
    text, ``input_image``, and audio as an ``input_file`` data URL (read back as the same audio)."""
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    return [_input_part(part) for part in content]


def _input_part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "image_url":
        return {"type": "input_image", "image_url": part["image_url"]["url"], "detail": "auto"}
    if kind == "audio_url":
        return {"type": "input_file", "file_data": part["audio_url"]["url"]}
    if kind == "input_audio":
        audio = part["input_audio"]
        return {"type": "input_file", "file_data": f"data:audio/{audio['format']};base64,{audio['data']}"}
    return {"type": "input_text", "text": str(part.get("text", ""))}


def has_media(messages: list[dict[str, Any]]) -> bool:
    """Whether any message carries media (its content is a list with a media part)."""
    return any(
        isinstance(m.get("content"), list) and any(p.get("type") in MEDIA_PARTS for p in m["content"])
        for m in messages
    )


def check_media(turns: Any, messages: list[dict[str, Any]], raw_input: Any) -> None:
    """A 400 before the response starts when the conversation has media and the model takes
    none (an engine without ``takes_media``, as in tests, takes it)."""
    if not has_media(messages) or getattr(turns, "takes_media", True):
        return
    param = "input"
    for i, item in enumerate(raw_input if isinstance(raw_input, list) else []):
        content = item.get("content") if isinstance(item, dict) else None
        for j, part in enumerate(content if isinstance(content, list) else []):
            if isinstance(part, dict) and part.get("type") in ("input_image", "input_file", "input_audio"):
                param = f"input[{i}].content[{j}]"
                break
        if param != "input":
            break
    raise InvalidRequest(
        f"model {turns.model_name!r} is not a multimodal model: it takes no image or audio input",
        param=param,
    )


def media_parts(result: types.CallToolResult) -> tuple[dict[str, Any], ...]:
    """A tool result's images and audio as media parts (the text describes them as well)."""
    media: list[dict[str, Any]] = []
    for block in result.content:
        if isinstance(block, types.ImageContent):
            media.append({"type": "image_url", "image_url": {"url": _data(block.mime_type, block.data)}})
        elif isinstance(block, types.AudioContent):
            media.append({"type": "audio_url", "audio_url": {"url": _data(block.mime_type, block.data)}})
    return tuple(media)


def without_tool_media(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool results as their text alone, for a model that takes no media (their text already
    describes each image or audio block); other messages as they are."""
    return [
        {**m, "content": "".join(p.get("text", "") for p in m["content"] if p.get("type") == "text")}
        if m.get("role") == "tool" and isinstance(m.get("content"), list)
        else m
        for m in messages
    ]


def _data(mime: str, data: str) -> str:
    return f"data:{mime};base64,{data}"


def _image(part: dict[str, Any], where: str) -> dict[str, Any]:
    url = part.get("image_url")
    if part.get("file_id") is not None and url is None:
        raise Unsupported(
            "'file_id' needs a Files API, which a vLLM server has not", param=f"{where}.file_id"
        )
    if not isinstance(url, str) or not url:
        raise InvalidRequest(
            "input_image needs 'image_url' (a URL or a data URL)", param=f"{where}.image_url"
        )
    # ``detail`` has no equivalent in vLLM (it warns on anything but "auto"): not passed.
    return {"type": "image_url", "image_url": {"url": url}}


def _audio(part: dict[str, Any], where: str) -> dict[str, Any]:
    audio = part.get("input_audio")
    if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
        raise InvalidRequest(
            "input_audio needs 'input_audio.data' and 'format'", param=f"{where}.input_audio"
        )
    return {
        "type": "input_audio",
        "input_audio": {"data": audio["data"], "format": audio.get("format", "wav")},
    }


def _file(part: dict[str, Any], where: str) -> dict[str, Any]:
    """``file_data`` as a data URL (or bare base64 with a ``filename``): images and audio go as
    media, text files as their text; other types (PDF...) have no vLLM input: a 400."""
    if part.get("file_data") is None:
        field = "file_id" if part.get("file_id") is not None else "file_url"
        raise Unsupported(
            f"input_file needs 'file_data': '{field}' is not supported (a vLLM server has no Files "
            "API, and fetches no file URLs for the model)",
            param=f"{where}.{field}",
        )
    data = part["file_data"]
    name = part.get("filename") if isinstance(part.get("filename"), str) else None
    if not isinstance(data, str):
        raise InvalidRequest("'file_data' must be a string", param=f"{where}.file_data")
    mime, payload = _data_url(data, name, where)
    if mime.startswith("image/"):
        return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{payload}"}}
    if mime.startswith("audio/"):
        return {"type": "audio_url", "audio_url": {"url": f"data:{mime};base64,{payload}"}}
    if mime.startswith(_TEXT_MIME):
        try:
            text = base64.b64decode(payload, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidRequest(
                "'file_data' is not base64 of UTF-8 text", param=f"{where}.file_data"
            ) from None
        return {"type": "text", "text": f"[file: {name or 'unnamed'}, {mime}]\n{text}"}
    raise Unsupported(
        f"input_file of type {mime!r} is not supported: vLLM takes images, audio and text files",
        param=f"{where}.file_data",
    )


_BY_SUFFIX = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".csv": "text/csv",
    ".json": "application/json",
}


def _data_url(data: str, filename: str | None, where: str) -> tuple[str, str]:
    """(mime type, base64 payload) of a data URL, or of bare base64 typed by the file name."""
    if data.startswith("data:"):
        head, sep, payload = data[5:].partition(",")
        if not sep or not head.endswith(";base64"):
            raise InvalidRequest("'file_data' must be a base64 data URL", param=f"{where}.file_data")
        return head[: -len(";base64")] or "application/octet-stream", payload
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if filename and "." in filename else ""
    return _BY_SUFFIX.get(suffix, "application/octet-stream"), data
