// The browser tab's title, "<page> · NovaSphere", in the current language.
import { useEffect } from "react";
import { useTranslation } from "react-i18next";

export function useDocumentTitle(page: string): void {
  const { t } = useTranslation();
  useEffect(() => {
    document.title = t("shell.documentTitle", { page });
  }, [page, t]);
}
