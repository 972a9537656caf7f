from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from catalog.models import Product


def products(request: HttpRequest) -> JsonResponse:
    rows = [{"name": p.name, "price": str(p.price)} for p in Product.objects.order_by("id")]
    return JsonResponse({"products": rows})
