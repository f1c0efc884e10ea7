"""Actors of the shop (found by manage.py streamflow_worker)."""

from shop.models import Order
from streamflow.contrib.django import app


@app.actor
def confirm(order_id: int) -> str:
    order = Order.objects.get(pk=order_id)
    order.status = "confirmed"
    order.save()
    return order.item
