"""The catalogue a clinic manager keeps: products, their composition and lots."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mesoclinic.access import Role, role_required
from mesoclinic.forms import form_add_validation_error
from treatments.forms.catalogue import (
    ComponentFormSet,
    DoseLimitForm,
    IngredientForm,
    LotForm,
    LotRecallForm,
    ProductForm,
)
from treatments.models import DoseLimit, Ingredient, Lot, Product, ProductComponent, ProtocolTemplate
from treatments.services.catalogue import lot_recall


@require_GET
@role_required(Role.MANAGER)
def catalogue(request: HttpRequest) -> HttpResponse:
    products = Product.objects.prefetch_related(
        Prefetch("components", queryset=ProductComponent.objects.select_related("ingredient")),
        Prefetch("lots", queryset=Lot.objects.order_by("expiry_date")),
    ).order_by("-is_active", "name")
    ingredients = Ingredient.objects.prefetch_related("allergens").order_by("name")
    limits = DoseLimit.objects.select_related("ingredient").order_by("ingredient__name", "kind")
    protocols = ProtocolTemplate.objects.order_by("name")
    context = {
        "products": products,
        "ingredients": ingredients,
        "limits": limits,
        "protocols": protocols,
        "today": timezone.localdate(),
    }
    return render(request, "treatments/catalogue.html", context)


@require_http_methods(["GET", "POST"])
@role_required(Role.MANAGER)
def product_edit(request: HttpRequest, product_id: int | None = None) -> HttpResponse:
    product = get_object_or_404(Product, pk=product_id) if product_id else Product()
    form = ProductForm(request.POST or None, instance=product)
    components = ComponentFormSet(request.POST or None, instance=product, prefix="c")
    if request.method == "POST" and form.is_valid() and components.is_valid():
        try:
            with transaction.atomic():
                saved = form.save()
                components.instance = saved
                components.save()
        except IntegrityError:
            form.add_error(
                None, _("A product with this name and manufacturer, or a repeated ingredient, already exists.")
            )
        else:
            messages.success(request, _("Product saved."))
            return redirect("catalogue")
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "treatments/product_form.html",
        {"form": form, "components": components, "product": product},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@role_required(Role.MANAGER)
def ingredient_edit(request: HttpRequest, ingredient_id: int | None = None) -> HttpResponse:
    ingredient = get_object_or_404(Ingredient, pk=ingredient_id) if ingredient_id else Ingredient()
    form = IngredientForm(request.POST or None, instance=ingredient)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Ingredient saved."))
        return redirect("catalogue")
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "treatments/simple_form.html", {"form": form, "title": _("Ingredient")}, status=status)


@require_http_methods(["GET", "POST"])
@role_required(Role.MANAGER)
def lot_create(request: HttpRequest, product_id: int) -> HttpResponse:
    product = get_object_or_404(Product, pk=product_id)
    form = LotForm(request.POST or None, initial={"received_at": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        lot = form.save(commit=False)
        lot.product = product
        try:
            with transaction.atomic():
                lot.full_clean()
                lot.save()
        except ValidationError as error:
            form_add_validation_error(form, error)
        else:
            messages.success(request, _("Lot %(lot)s added.") % {"lot": lot.lot_number})
            return redirect("catalogue")
    status = 400 if form.is_bound and form.errors else 200
    title = _("New lot of %(product)s") % {"product": product}
    return render(request, "treatments/simple_form.html", {"form": form, "title": title}, status=status)


@require_POST
@role_required(Role.MANAGER)
def lot_recall_view(request: HttpRequest, lot_id: int) -> HttpResponse:
    lot = get_object_or_404(Lot, pk=lot_id)
    form = LotRecallForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why the lot is recalled."))
        return redirect("catalogue")
    try:
        lot_recall(lot=lot, reason=form.cleaned_data["reason"])
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Lot %(lot)s is recalled: it can no longer be used.") % {"lot": lot.lot_number})
    return redirect("catalogue")


@require_http_methods(["GET", "POST"])
@role_required(Role.MANAGER)
def dose_limit_edit(request: HttpRequest, limit_id: int | None = None) -> HttpResponse:
    limit = get_object_or_404(DoseLimit, pk=limit_id) if limit_id else DoseLimit()
    form = DoseLimitForm(request.POST or None, instance=limit)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                form.save()
        except IntegrityError:
            form.add_error(None, _("This ingredient already has this kind of limit; edit that one."))
        else:
            messages.success(request, _("Limit saved. It applies to every safety check from now on."))
            return redirect("catalogue")
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "treatments/simple_form.html", {"form": form, "title": _("Dose limit")}, status=status)
