from django.db import models


class Order(models.Model):
    item = models.CharField(max_length=100)
    status = models.CharField(max_length=20, default="placed")
    workflow_id = models.CharField(max_length=64, default="")
