from django.db import transaction
from django.http import HttpRequest, JsonResponse

from shop.models import Order
from shop.tasks import confirm
from streamflow.contrib.django import send_on_commit


class OutOfStock(Exception):
    pass


def place_order(request: HttpRequest) -> JsonResponse:
    """POST item=...: an order, confirmed by a task once it is committed; an item
    ``out-of-stock`` is refused after the task was asked for (the transaction rolls
    back, and the task is never sent)."""
    item = request.POST["item"]
    try:
        with transaction.atomic():
            order = Order.objects.create(item=item)
            order.workflow_id = send_on_commit(confirm, order.pk)
            order.save()
            if item == "out-of-stock":
                raise OutOfStock(item)
    except OutOfStock:
        return JsonResponse({"refused": item, "workflow_id": order.workflow_id}, status=409)
    return JsonResponse({"order": order.pk, "workflow_id": order.workflow_id}, status=201)
