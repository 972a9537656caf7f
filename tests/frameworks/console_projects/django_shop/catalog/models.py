from __future__ import annotations

from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=8, decimal_places=2)

    def __str__(self) -> str:
        return self.name


class Item(models.Model):
    """A unit of stock: ``orders`` has an ``Item`` too (an order line); this one wins."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    sku = models.CharField(max_length=20)
