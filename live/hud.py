"""Text on top of the game: the HUD, the help overlay, short messages. Drawing only, no state."""

from __future__ import annotations

import pygame

WHITE = (255, 255, 255)
SHADE = (0, 0, 0, 170)


class Text:
    """Draws blocks of text with pygame's default font; draws nothing if fonts are unavailable."""

    def __init__(self, size: int = 20):
        try:
            pygame.font.init()
            self.font: pygame.font.Font | None = pygame.font.Font(None, size)
        except (pygame.error, OSError):
            self.font = None

    def block(self, screen: pygame.Surface, lines: list[str], pos: tuple[int, int], centre: bool = False) -> None:
        """Lines on a shaded box, top-left at `pos` (or centred on it)."""
        if self.font is None or not lines:
            return
        rendered = [self.font.render(line, True, WHITE) for line in lines]
        pad, height = 6, self.font.get_linesize()
        box = pygame.Surface((max(r.get_width() for r in rendered) + 2 * pad, height * len(rendered) + 2 * pad), pygame.SRCALPHA)
        box.fill(SHADE)
        for i, r in enumerate(rendered):
            box.blit(r, (pad, pad + i * height))
        x, y = pos
        if centre:
            x, y = x - box.get_width() // 2, y - box.get_height() // 2
        screen.blit(box, (x, y))

    def caption(self, screen: pygame.Surface, text: str, bottom_left: tuple[int, int]) -> None:
        if self.font is None:
            return
        self.block(screen, [text], (bottom_left[0], bottom_left[1] - self.font.get_linesize() - 12))
