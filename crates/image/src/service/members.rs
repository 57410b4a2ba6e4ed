//! Image members: sharing a `shared` image with other projects, who accept or reject it.

use ferrostack_common::time::now_micros;
use ferrostack_common::AuthContext;

use crate::error::{ImageError, Result};
use crate::model::Member;
use crate::service::ImageService;

const MEMBER_STATUSES: &[&str] = &["pending", "accepted", "rejected"];

impl ImageService {
    pub async fn add_member(
        &self,
        ctx: &AuthContext,
        image_id: &str,
        member_id: &str,
    ) -> Result<Member> {
        let image = self.visible_image(ctx, image_id).await?;
        self.authorize(ctx, "add_member", &image).await?;
        if image.visibility != "shared" {
            return Err(ImageError::Forbidden(format!(
                "Only shared images have members; image {image_id} is {}.",
                image.visibility
            )));
        }
        if member_id.is_empty() || member_id.len() > 255 {
            return Err(ImageError::bad("Invalid member id."));
        }
        if self.store.member(image_id, member_id).await?.is_some() {
            return Err(ImageError::Conflict(format!(
                "Member {member_id} already exists for image {image_id}."
            )));
        }
        let now = now_micros();
        let m = Member {
            image_id: image_id.into(),
            member_id: member_id.into(),
            status: "pending".into(),
            created_at: now,
            updated_at: now,
        };
        self.store.insert_member(&m).await?;
        Ok(m)
    }

    /// The image's members as `ctx` may see them: the owner sees all, a member only itself.
    pub async fn list_members(&self, ctx: &AuthContext, image_id: &str) -> Result<Vec<Member>> {
        let image = self.visible_image(ctx, image_id).await?;
        self.authorize(ctx, "get_members", &image).await?;
        if image.visibility != "shared" {
            return Err(ImageError::Forbidden(format!(
                "Only shared images have members; image {image_id} is {}.",
                image.visibility
            )));
        }
        let mut members = self.store.members(image_id).await?;
        if !self.is_admin(ctx) && image.owner.as_deref() != ctx.project_id() {
            members.retain(|m| Some(m.member_id.as_str()) == ctx.project_id());
        }
        Ok(members)
    }

    pub async fn get_member(
        &self,
        ctx: &AuthContext,
        image_id: &str,
        member_id: &str,
    ) -> Result<Member> {
        self.list_members(ctx, image_id)
            .await?
            .into_iter()
            .find(|m| m.member_id == member_id)
            .ok_or_else(|| {
                ImageError::NotFound(format!(
                    "Member {member_id} not found for image {image_id}."
                ))
            })
    }

    /// Only the member itself accepts or rejects a share.
    pub async fn set_member_status(
        &self,
        ctx: &AuthContext,
        image_id: &str,
        member_id: &str,
        status: &str,
    ) -> Result<Member> {
        let image = self.visible_image(ctx, image_id).await?;
        let mut m = self.get_member(ctx, image_id, member_id).await?;
        self.authorize(ctx, "modify_member", &image).await?;
        if ctx.project_id() != Some(member_id) && !self.is_admin(ctx) {
            return Err(ImageError::Forbidden(
                "Only the member itself can change its status.".into(),
            ));
        }
        if !MEMBER_STATUSES.contains(&status) {
            return Err(ImageError::bad(format!(
                "Invalid status: {status}; must be one of {MEMBER_STATUSES:?}."
            )));
        }
        let now = now_micros();
        self.store
            .set_member_status(image_id, member_id, status, now)
            .await?;
        m.status = status.into();
        m.updated_at = now;
        Ok(m)
    }

    pub async fn delete_member(
        &self,
        ctx: &AuthContext,
        image_id: &str,
        member_id: &str,
    ) -> Result<()> {
        let image = self.visible_image(ctx, image_id).await?;
        self.authorize(ctx, "delete_member", &image).await?;
        if !self.store.delete_member(image_id, member_id).await? {
            return Err(ImageError::NotFound(format!(
                "Member {member_id} not found for image {image_id}."
            )));
        }
        Ok(())
    }
}
