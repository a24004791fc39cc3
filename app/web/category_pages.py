"""Administration of the district's categories of footage: add, rename and describe,
retire and restore. Administrators only (categories carry retention); another
district's category answers 404."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import InputRequired, Length

from app import categories
from app.web.context import db, login_required, now, require
from evidence.adapters.sql.items import Category
from evidence.errors import EvidenceError
from evidence.policy import Action, Kind, Principal, Resource

bp = Blueprint("categories", __name__, url_prefix="/admin/categories")


class CategoryForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired(), Length(max=categories.MAX_NAME)])
    description = TextAreaField(
        "Description",
        validators=[Length(max=categories.MAX_DESCRIPTION)],
        description="What footage belongs here, so wearers and supervisors choose well.",
    )


def _district_id() -> int:
    principal: Principal = g.principal
    return principal.district_id


def _category(category_id: int) -> Category:
    category = db().get(Category, category_id)
    if category is None:
        abort(404)
    require(Action.MANAGE_RETENTION, Resource(Kind.DISTRICT, category.district_id, None))
    return category


def _saved(message: str) -> ResponseReturnValue:
    db().commit()
    flash(message, "success")
    return redirect(url_for("categories.listing"))


@bp.route("", methods=["GET", "POST"])
@login_required
def listing() -> ResponseReturnValue:
    district_id = _district_id()
    require(Action.MANAGE_RETENTION, Resource(Kind.DISTRICT, district_id, None))
    form = CategoryForm()
    refused_now = False
    if form.validate_on_submit():
        try:
            made = categories.add_category(
                db(),
                district_id,
                form.name.data or "",
                form.description.data or "",
                actor=g.user.pseudonym,
                now=now(),
            )
        except EvidenceError as refused:
            db().rollback()
            flash(f"{refused}.", "error")
            refused_now = True
        else:
            return _saved(f"Category {made.name} added.")
    return (
        render_template(
            "admin/categories.html",
            form=form,
            categories=categories.categories_of(db(), district_id),
            usage=categories.usage(db(), district_id),
            max_name=categories.MAX_NAME,
            max_description=categories.MAX_DESCRIPTION,
        ),
        400 if form.errors or refused_now else 200,
    )


@bp.post("/<int:category_id>")
@login_required
def change(category_id: int) -> ResponseReturnValue:
    category = _category(category_id)
    try:
        changed = categories.change_category(
            db(),
            category,
            request.form.get("name", ""),
            request.form.get("description", ""),
            actor=g.user.pseudonym,
            now=now(),
        )
    except EvidenceError as refused:
        db().rollback()
        flash(f"{refused}.", "error")
        return redirect(url_for("categories.listing"))
    return _saved("Category saved." if changed else "Nothing changed.")


@bp.post("/<int:category_id>/retire")
@login_required
def retire(category_id: int) -> ResponseReturnValue:
    category = _category(category_id)
    categories.retire_category(db(), category, actor=g.user.pseudonym, now=now())
    return _saved(f"Category {category.name} retired: items keep it, nobody can choose it.")


@bp.post("/<int:category_id>/restore")
@login_required
def restore(category_id: int) -> ResponseReturnValue:
    category = _category(category_id)
    categories.restore_category(db(), category, actor=g.user.pseudonym, now=now())
    return _saved(f"Category {category.name} restored.")
