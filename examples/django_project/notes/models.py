from __future__ import annotations

from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.text

    def as_dict(self) -> dict[str, object]:
        return {"id": self.pk, "text": self.text, "created": self.created.isoformat()}
