from django.contrib import admin

from .models import Order, OrderLine, Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "sku", "price"]


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["reference", "status", "email", "total", "created_at", "paid_at"]
    list_filter = ["status"]
    readonly_fields = ["token", "capi_context", "created_at"]
    inlines = [OrderLineInline]
