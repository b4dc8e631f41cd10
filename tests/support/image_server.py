"""An MCP server over stdio whose tool returns an image (a 64x64 PNG) beside its text."""

from __future__ import annotations

import base64
import io

from mcp.server.mcpserver import MCPServer
from mcp.types import ImageContent, TextContent
from PIL import Image


def png(size: int = 64, color: str = "red") -> str:
    """A plain square PNG, base64."""
    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


server = MCPServer("camera")


@server.tool(description="Take a picture.")
def snapshot() -> list[TextContent | ImageContent]:
    return [
        TextContent(type="text", text="the picture"),
        ImageContent(type="image", data=png(), mime_type="image/png"),
    ]


if __name__ == "__main__":
    server.run("stdio")
