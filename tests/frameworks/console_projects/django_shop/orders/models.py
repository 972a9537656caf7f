from __future__ import annotations

from catalog.models import Product
from django.db import models


class Order(models.Model):
    created = models.DateTimeField(auto_now_add=True)


class Item(models.Model):
    """An order line (named like ``catalog.Item``: the console keeps catalog's, as Django does)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE)
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="order_items")
    quantity = models.PositiveIntegerField(default=1)
