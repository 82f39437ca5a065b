"""The demo shop's pages. The Conversions API parts are the two signals and the tags."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from django_capi.shop.signals import checkout_started

from . import cart
from .consent import CONSENT_COOKIE
from .forms import CheckoutForm
from .models import Order, OrderLine, Product
from .payments import confirm_payment

ORDER_SESSION_KEY = "checkout_order"


def product_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        product = get_object_or_404(Product, pk=request.POST.get("product"))
        cart.add(request, product)
        messages.success(request, f"{product.name} is in your cart.")
        return redirect("shop:cart")
    return render(request, "shop/product_list.html", {"products": Product.objects.all()})


def cart_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        for product_id in cart.items(request):
            value = request.POST.get(f"quantity_{product_id}")
            if value is not None and value.isdigit():
                cart.set_quantity(request, product_id, int(value))
        return redirect("shop:cart")
    lines = cart.lines(request)
    return render(request, "shop/cart.html", {"lines": lines, "total": cart.total(lines)})


def _checkout_order(request: HttpRequest, lines: list[cart.CartLine]) -> Order:
    """The order for this checkout: the session's one while the cart is unchanged."""
    wanted = sorted((line.product.pk, line.quantity, line.product.price) for line in lines)
    token = request.session.get(ORDER_SESSION_KEY)
    order = Order.objects.filter(token=token, status=Order.Status.CHECKOUT).first()
    if order is not None:
        current = sorted(order.lines.values_list("product_id", "quantity", "unit_price"))
        if current == wanted:
            return order
        order.status = Order.Status.ABANDONED  # the cart changed: a new checkout
        order.save(update_fields=["status"])
    with transaction.atomic():
        order = Order.objects.create()
        OrderLine.objects.bulk_create(
            OrderLine(order=order, product=line.product, quantity=line.quantity,
                      unit_price=line.product.price)
            for line in lines
        )  # fmt: skip
    request.session[ORDER_SESSION_KEY] = str(order.token)
    return order


def checkout(request: HttpRequest) -> HttpResponse:
    lines = cart.lines(request)
    if not lines:
        messages.info(request, "Your cart is empty.")
        return redirect("shop:products")
    order = _checkout_order(request, lines)
    if request.method == "POST":
        form = CheckoutForm(request.POST, instance=order)
        if form.is_valid():
            form.save()
            return redirect("shop:pay", token=order.token)
    else:
        form = CheckoutForm(instance=order)
        # Records InitiateCheckout (once per order) and keeps this request's IP, user agent,
        # fbp and fbc on the order for the Purchase.
        checkout_started.send(sender=Order, order=order, request=request)
    return render(request, "shop/checkout.html", {"order": order, "form": form})


def pay(request: HttpRequest, token: str) -> HttpResponse:
    order = get_object_or_404(Order, token=token)
    if order.status == Order.Status.PAID:
        return redirect("shop:thanks", token=order.token)
    if order.status != Order.Status.CHECKOUT:
        messages.info(request, "That checkout has expired.")
        return redirect("shop:cart")
    if request.method == "POST":
        # What a payment provider's webhook would trigger (no visitor request involved).
        confirm_payment(order)
        cart.clear(request)
        request.session.pop(ORDER_SESSION_KEY, None)
        return redirect("shop:thanks", token=order.token)
    return render(request, "shop/pay.html", {"order": order})


def thanks(request: HttpRequest, token: str) -> HttpResponse:
    order = get_object_or_404(Order, token=token)
    if order.status != Order.Status.PAID:
        return redirect("shop:pay", token=order.token)
    return render(request, "shop/thanks.html", {"order": order})


@require_POST
def consent(request: HttpRequest) -> HttpResponse:
    choice = "yes" if request.POST.get("choice") == "accept" else "no"
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = "/"
    response = HttpResponseRedirect(target)
    response.set_cookie(
        CONSENT_COOKIE, choice, max_age=365 * 24 * 3600, samesite="Lax",
        secure=request.is_secure(),
    )  # fmt: skip
    return response
