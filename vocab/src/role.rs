//! What a panel user may do (`users.role`).

words! {
    /// What a panel user may do.
    pub enum Role ("user role") {
        /// Everything, including the admin pages and users.
        Admin = "admin",
        /// The panel, listen-in, pausing and logging out agents.
        Supervisor = "supervisor",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_texts() {
        crate::words::check::words(&Role::ALL, &["admin", "supervisor"]);
    }
}
